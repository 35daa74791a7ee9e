"""Words the terminal, report.html and summary.md share for what is not a plain number: the validation
score of a task, the convergence check (also when it could not be made), and recorded settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What an old record (before the convergence check said why) meant by comparing no steps: the only way
# to get there is a model with dropout, whose masks are random draws of each framework's own generator.
DROPOUT_REASON = "the model has dropout, and each framework draws its own random masks"


def regression(task: str | None) -> bool:
    return task == "regression"


def score_name(task: str | None) -> str:
    """The name of a validation score: accuracy, or for regression the MSE (records store -MSE)."""
    return "val MSE" if regression(task) else "val acc"


def score_value(value: float | None, task: str | None) -> float | None:
    """The score as a reader knows it: accuracy, or the MSE (positive) for regression."""
    if value is None:
        return None
    return -value if regression(task) else value


def score(value: float | None, task: str | None, fmt: str = ".3f") -> str:
    """'val acc 0.913' or 'val MSE 1.096'; 'n/a' when the score was not finite (stored as null)."""
    shown = score_value(value, task)
    return f"{score_name(task)} {'n/a' if shown is None else format(shown, fmt)}"


def target(value: float | None, best: float | None, task: str | None) -> str:
    """The time-to-target goal in words: 95% of the best accuracy, or the best MSE / 0.95."""
    if value is None:
        return "no target (no finite validation score)"
    best_text = "" if best is None else f", {score_value(best, task):.3f}"
    if regression(task):
        return f"validation MSE {score_value(value, task):.3f} (the best{best_text}, divided by 0.95)"
    return f"validation accuracy {value:.3f} (95% of the best{best_text})"


@dataclass(frozen=True)
class Convergence:
    """The eager-vs-eager convergence check in words: the loss curves, the final scores, the outcome."""

    curves: str
    scores: str
    ok: bool
    status: str  # the outcome in a few words, for a badge

    @property
    def sentence(self) -> str:
        return f"{self.curves}; {self.scores}: {self.status}"


def convergence(conv: dict[str, Any], task: str | None) -> Convergence:
    """Reads the record's convergence dict, where NaN differences are stored as null."""
    steps, rel = conv.get("steps") or 0, conv.get("max_rel_loss_diff")
    if not steps:
        why = conv.get("not_compared") or DROPOUT_REASON
        curves = f"per-step losses not compared ({why}, so the curves differ by design)"
    elif rel is None:
        curves = f"first {steps} losses not comparable (a loss was NaN or infinite)"
    elif conv.get("dropout_off"):
        curves = f"first {steps} losses of a run with dropout off within {rel:.1e} (relative)"
    else:
        curves = f"first {steps} losses within {rel:.1e} (relative)"
    gap = conv.get("val_acc_gap_points")
    if gap is None:
        scores = "final validation scores not comparable (a score was NaN or infinite)"
    elif regression(task):
        scores = f"final validation MSE differs by {gap:.2f}%"
    else:
        scores = f"final validation accuracy gap {gap:.2f} points"
    if gap is not None and conv.get("dropout_off"):
        scores += " (not held: each framework draws its own dropout masks)"
    ok = bool(conv.get("ok"))
    if not ok:
        status = f"diverged: {conv.get('why') or 'see the records'}"
    elif not steps:
        status = "final scores agree (the only check possible)"
    else:
        status = "ok"
    return Convergence(curves, scores, ok, status)


def setting(value: Any) -> str:
    """A recorded setting as text: yes/no for booleans, 'none' for null, 'key value' pairs for dicts."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{label(k)} {setting(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(setting(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def label(key: str) -> str:
    """A settings key as words: host_device_copies -> host device copies."""
    return str(key).replace("_", " ")


def optimizer(opt: Any) -> str:
    """'Adam, learning rate 0.001, betas 0.9 / 0.999, epsilon 1e-07, weight decay 0' from the record's
    optimizer dict (its long note belongs in the fairness table, not in a header)."""
    if not isinstance(opt, dict):
        return setting(opt)
    name = str(opt.get("name", "optimizer"))
    parts = [{"adam": "Adam", "sgd": "SGD", "adamw": "AdamW"}.get(name, name)]
    if "learning_rate" in opt:
        parts.append(f"learning rate {setting(opt['learning_rate'])}")
    if "beta_1" in opt and "beta_2" in opt:
        parts.append(f"betas {setting(opt['beta_1'])} / {setting(opt['beta_2'])}")
    parts += [
        f"{label(k)} {setting(v)}"
        for k, v in opt.items()
        if k not in ("name", "learning_rate", "beta_1", "beta_2", "note")
    ]
    return ", ".join(parts)
