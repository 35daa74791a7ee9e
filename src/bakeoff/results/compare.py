"""Compares two runs case by case (`bakeoff compare`), flagging regressions.

Only records are read (no framework is imported), so comparing is instant and works on half-finished
runs.

The regression rule, for every speed case measured in both runs (training step times without the
first step, pipeline samples/s per pass, inference latency per batch size):

- the ratio is B's median over A's, with a bootstrap 95% confidence interval over the raw samples;
- where the interval contains 1.0: "no significant difference";
- where B is significantly slower (for times the interval lies above 1, for throughputs below 1)
  AND its median is more than `threshold` (5%) slower: a REGRESSION. A significant change under
  5% is reported ("minor slowdown"), not flagged: runs measured minutes or days apart on a shared
  machine drift by a few per cent, which the within-run interval cannot see;
- the mirror image is an improvement (or a "minor speedup").

Quality: an accuracy drop of more than 0.5 points (classification), an MSE more than 5% worse
(regression task), an int8 gate that passed in A and fails in B, or a case ok in A and failed in B
is a regression as well.

The thresholds, verdict words and row types are in comparison.py; the warnings that A and B are not
like for like in comparability.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from bakeoff.measure.stats import Ratio, ratio_ci, summarize
from bakeoff.results.comparability import comparability_warnings
from bakeoff.results.comparison import (
    ACCURACY_POINTS,
    IMPROVEMENT,
    MINOR_SLOWDOWN,
    MINOR_SPEEDUP,
    MSE_RELATIVE,
    NOT_COMPARED,
    REGRESSION,
    SAME,
    SPEED_THRESHOLD,
    UNCHANGED,
    Comparison,
    QualityRow,
    SpeedRow,
    StatusRow,
)
from bakeoff.results.run import Run
from bakeoff.results.runs import parity_diff, timed_cases


def compare(
    a: Run, b: Run, *, threshold: float = SPEED_THRESHOLD, n_boot: int = 2000, seed: int = 0
) -> Comparison:
    """Every case of A against the same case of B (B/A); see the module docstring for the rule."""
    if threshold < 0:
        raise ValueError(f"threshold must be 0 or more, got {threshold}")
    judge = _Judge(threshold, n_boot, seed)
    speed = [*_train_rows(a, b, judge), *_pipeline_rows(a, b, judge), *_infer_rows(a, b, judge)]
    only_a, only_b = _only_in_one(a, b)
    return Comparison(
        a=a,
        b=b,
        threshold=threshold,
        warnings=comparability_warnings(a, b),
        speed=speed,
        quality=_quality_rows(a, b),
        status=_status_rows(a, b),
        only_a=only_a,
        only_b=only_b,
    )


def speed_verdict(ratio: Ratio, *, higher_is_better: bool, threshold: float = SPEED_THRESHOLD) -> str:
    """The rule for one ratio B/A of medians (see the module docstring)."""
    if not ratio.significant:
        return SAME
    # The interval, not the point estimate, picks the direction (as Ratio.verdict does); the point
    # estimate then says whether the change is big enough to matter.
    b_slower = (ratio.high < 1.0) if higher_is_better else (ratio.low > 1.0)
    slowdown = 1.0 / ratio.ratio if higher_is_better else ratio.ratio
    if b_slower:
        return REGRESSION if slowdown > 1.0 + threshold else MINOR_SLOWDOWN
    return IMPROVEMENT if slowdown < 1.0 / (1.0 + threshold) else MINOR_SPEEDUP


@dataclass(frozen=True)
class _Judge:
    """The rule's settings, applied to one pair of raw samples at a time."""

    threshold: float
    n_boot: int
    seed: int

    def row(
        self,
        where: tuple[str, str, int | None],  # stage, case, batch
        metric: str,
        a_samples: Any,
        b_samples: Any,
        *,
        higher_is_better: bool,
        block: int | None,
    ) -> SpeedRow:
        a_values, b_values = np.asarray(a_samples, dtype=float), np.asarray(b_samples, dtype=float)
        try:
            ratio: Ratio | None = ratio_ci(
                b_values, a_values, n_boot=self.n_boot, seed=self.seed, block=block
            )
        except ValueError:
            ratio = None  # empty, NaN or non-positive samples: the medians are shown, no verdict
        verdict = (
            speed_verdict(ratio, higher_is_better=higher_is_better, threshold=self.threshold)
            if ratio
            else NOT_COMPARED
        )
        scale = 1.0 if higher_is_better else 1000.0  # times are stored in seconds, shown in ms
        return SpeedRow(
            *where,
            metric=metric,
            higher_is_better=higher_is_better,
            a=_median(a_values) * scale,
            b=_median(b_values) * scale,
            n_a=int(a_values.size),
            n_b=int(b_values.size),
            ratio=ratio,
            verdict=verdict,
            noisy=any(v.size > 1 and summarize(v).noisy for v in (a_values, b_values)),
        )


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


def _pairs(a: Run, b: Run, stage: str, key: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Cases ok in both runs whose metrics hold `key`, in A's order."""
    b_cases = {r["case"]: r for r in timed_cases(b, stage) if key in r["metrics"]}
    return [
        (r["case"], r["metrics"], b_cases[r["case"]]["metrics"])
        for r in timed_cases(a, stage)
        if key in r["metrics"] and r["case"] in b_cases
    ]


def _train_rows(a: Run, b: Run, judge: _Judge) -> list[SpeedRow]:
    # The first step holds compile/trace time; training.py leaves it out of step statistics too.
    # Consecutive steps are not independent: a moving-block bootstrap, as training.py's own ratios.
    return [
        judge.row(
            ("train", case, None),
            "step ms",
            _steady(ma["step_times"]),
            _steady(mb["step_times"]),
            higher_is_better=False,
            block=None,
        )
        for case, ma, mb in _pairs(a, b, "train", "step_times")
    ]


def _steady(times: list[float]) -> list[float]:
    return times[1:] if len(times) > 1 else times


def _pipeline_rows(a: Run, b: Run, judge: _Judge) -> list[SpeedRow]:
    rows = []
    for case, ma, mb in _pairs(a, b, "pipeline", "samples_per_s"):
        raw_a = (ma.get("raw") or {}).get("samples_per_s")
        raw_b = (mb.get("raw") or {}).get("samples_per_s")
        if raw_a and raw_b:
            # Passes over the data are separate iterations, independent enough for a plain bootstrap.
            rows.append(
                judge.row(("pipeline", case, None), "samples/s", raw_a, raw_b, higher_is_better=True, block=1)
            )
        else:  # a record with only the median: shown, but without an interval there is no verdict
            rows.append(
                SpeedRow(
                    *("pipeline", case, None, "samples/s"),
                    higher_is_better=True,
                    a=float(ma["samples_per_s"]),
                    b=float(mb["samples_per_s"]),
                    n_a=0,
                    n_b=0,
                    ratio=None,
                    verdict=NOT_COMPARED,
                    noisy=False,
                )
            )
    return rows


def _infer_rows(a: Run, b: Run, judge: _Judge) -> list[SpeedRow]:
    rows = []
    for case, ma, mb in _pairs(a, b, "infer", "batches"):
        for size in sorted(set(ma["batches"]) & set(mb["batches"]), key=int):
            ta, tb = ma["batches"][size].get("times"), mb["batches"][size].get("times")
            if ta and tb:
                # Consecutive calls share caches and clock state: a moving-block bootstrap, as the
                # infer stage's own ratios.
                rows.append(
                    judge.row(
                        ("infer", case, int(size)), "latency ms", ta, tb, higher_is_better=False, block=None
                    )
                )
    return rows


# Quality -------------------------------------------------------------------------------------------


def _classification(run: Run) -> bool:
    task = (run.info.get("spec") or {}).get("task") or {}
    return task.get("type", "classification") != "regression"


def _score_row(
    stage: str, case: str, name: str, a: float | None, b: float | None, classification: bool
) -> QualityRow:
    metric = name if classification else "MSE"
    if a is None or b is None:
        # null is a NaN score: a model that diverged. Losing a score is a regression, gaining one not.
        verdict = REGRESSION if b is None and a is not None else UNCHANGED
        shown_a, shown_b = (
            (a if classification or a is None else -a),
            (b if classification or b is None else -b),
        )
        change = "no score" if b is None else "score regained" if a is None else ""
        return QualityRow(stage, case, metric, shown_a, shown_b, change, verdict)
    if classification:
        points = 100.0 * (b - a)
        verdict = (
            REGRESSION
            if points < -ACCURACY_POINTS
            else IMPROVEMENT
            if points > ACCURACY_POINTS
            else UNCHANGED
        )
        return QualityRow(stage, case, metric, a, b, f"{points:+.2f} pts", verdict)
    mse_a, mse_b = -a, -b  # regression scores are stored as -MSE so that higher is better everywhere
    rel = (mse_b - mse_a) / mse_a if mse_a else 0.0
    verdict = REGRESSION if rel > MSE_RELATIVE else IMPROVEMENT if rel < -MSE_RELATIVE else UNCHANGED
    return QualityRow(stage, case, metric, mse_a, mse_b, f"MSE {100 * rel:+.1f}%", verdict)


def _quality_rows(a: Run, b: Run) -> list[QualityRow]:
    classification = _classification(a) and _classification(b)
    rows: list[QualityRow] = []
    pa, pb = parity_diff(a), parity_diff(b)
    if pa is not None or pb is not None:
        # Shown for context only: crossing the tolerance fails the parity record, caught as a status change.
        rows.append(QualityRow("parity", "outputs", "max abs output diff", pa, pb, "", ""))
    for stage, case, name, sa, sb in _scores(a, b):
        rows.append(_score_row(stage, case, name, sa, sb, classification))
    for stage, case, ga, gb in _gates(a, b):
        verdict = (
            REGRESSION
            if (ga, gb) == ("pass", "fail")
            else IMPROVEMENT
            if (ga, gb) == ("fail", "pass")
            else UNCHANGED
        )
        rows.append(QualityRow(stage, case, "gate", ga, gb, "" if ga == gb else f"{ga} -> {gb}", verdict))
    return rows


def _score_of(record: dict[str, Any]) -> tuple[str, float | None] | None:
    """(what, score) of a training mode, the export fit, an artifact or an inference case; None if it
    has none."""
    m = record["metrics"]
    if "val_acc" in m and record["stage"] in ("train", "export"):
        return "val acc", m["val_acc"]
    for holder in ("verification", "quality"):
        if isinstance(m.get(holder), dict) and "accuracy" in m[holder]:
            return "accuracy", m[holder]["accuracy"]
    return None


def _scores(a: Run, b: Run) -> list[tuple[str, str, str, float | None, float | None]]:
    out = []
    for stage in ("train", "export", "infer"):
        b_cases = {r["case"]: r for r in b.stage(stage) if r["status"] == "ok"}
        for ra in a.stage(stage):
            rb = b_cases.get(ra["case"])
            if ra["status"] != "ok" or rb is None:
                continue
            sa, sb = _score_of(ra), _score_of(rb)
            if sa and sb:
                out.append((stage, ra["case"], sa[0], sa[1], sb[1]))
    return out


def _gates(a: Run, b: Run) -> list[tuple[str, str, str, str]]:
    out = []
    for stage in ("export", "infer"):
        b_gates = {r["case"]: r["metrics"].get("gate") for r in b.stage(stage) if r["status"] == "ok"}
        for ra in a.stage(stage):
            ga, gb = ra["metrics"].get("gate"), b_gates.get(ra["case"])
            if ra["status"] == "ok" and isinstance(ga, str) and isinstance(gb, str):
                out.append((stage, ra["case"], ga, gb))
    return out


# Status and coverage -------------------------------------------------------------------------------

Key = tuple[str, str, str | None]


def _keyed(a: Run, b: Run) -> tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]]:
    """Both runs' newest records by (stage, case, framework), where the framework counts only for a
    case name recorded once per framework (the pipeline's input-bound verdict, the training peak): a
    case whose failure record names no framework is still the same case."""
    shared: set[tuple[str, str]] = set()
    for run in (a, b):
        counts = Counter((r["stage"], r["case"]) for r in run.latest)
        shared |= {name for name, count in counts.items() if count > 1}

    def key(r: dict[str, Any]) -> Key:
        return (r["stage"], r["case"], r["framework"] if (r["stage"], r["case"]) in shared else None)

    return {key(r): r for r in a.latest}, {key(r): r for r in b.latest}


def _label(key: Key) -> str:
    return f"{key[1]} ({key[2]})" if key[2] else key[1]


def _status_rows(a: Run, b: Run) -> list[StatusRow]:
    ka, kb = _keyed(a, b)
    rows = []
    for key, ra in ka.items():
        rb = kb.get(key)
        if rb is None or (ra["status"], rb["status"]) == ("ok", "ok"):
            continue
        verdict = {("ok", "failed"): REGRESSION, ("failed", "ok"): "fixed"}.get(
            (ra["status"], rb["status"]), "still failing"
        )
        message = rb["message"] if rb["status"] == "failed" else ra["message"]
        rows.append(StatusRow(key[0], _label(key), ra["status"], rb["status"], verdict, str(message)))
    return rows


def _only_in_one(a: Run, b: Run) -> tuple[list[str], list[str]]:
    """The cases recorded in one run only, as "stage case"."""
    ka, kb = _keyed(a, b)
    return (
        [f"{k[0]} {_label(k)}" for k in ka if k not in kb],
        [f"{k[0]} {_label(k)}" for k in kb if k not in ka],
    )
