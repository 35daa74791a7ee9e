"""The training summary's arithmetic on hand-made records: time to target, convergence, ratios."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bakeoff.measure.isolation import WorkerResult
from bakeoff.report import wording
from bakeoff.results.store import make_record
from bakeoff.stages.train.training import convergence, fp32_horizon, mode_record, summary_record, time_to


def mode(case: str, step_ms: float, accs: list[float], losses: list[float], seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    times = list(step_ms / 1000 * (1 + 0.02 * rng.standard_normal(200)))
    metrics = {
        "val_acc_per_epoch": accs,
        "train_seconds_per_epoch": [1.0, 1.0, 1.0],
        "val_acc": accs[-1],
        "step_times": times,
        "step_s": {"median": float(np.median(times))},
        "step_losses": losses,
    }
    return make_record("train", case, "ok", framework=case.split("-")[0], metrics=metrics)


def test_time_to_counts_epochs_until_the_target() -> None:
    assert time_to({"val_acc_per_epoch": [0.5, 0.8, 0.9], "train_seconds_per_epoch": [2, 3, 4]}, 0.8) == 5
    assert time_to({"val_acc_per_epoch": [0.5, 0.6], "train_seconds_per_epoch": [2, 3]}, 0.8) is None


def test_convergence_passes_on_matching_curves_and_fails_on_a_different_optimizer() -> None:
    losses = list(np.linspace(2.3, 1.0, 30))
    same = convergence({"step_losses": losses, "val_acc": 0.90}, {"step_losses": losses, "val_acc": 0.905})
    assert same["ok"] and same["steps"] == 30  # the whole run: no drift probe says otherwise
    faster = [2.3 * (1 - 0.02 * k) for k in range(30)]  # e.g. a learning rate that is not the same
    diverged = convergence({"step_losses": losses, "val_acc": 0.90}, {"step_losses": faster, "val_acc": 0.93})
    assert not diverged["ok"] and diverged["first_divergent_step"] == 2
    assert "the loss at step 2 differs by" in diverged["why"] and "3.00 points" in diverged["why"]


def test_convergence_covers_every_step_and_names_the_first_that_diverges() -> None:
    losses = list(np.linspace(2.3, 0.3, 186))
    late = list(losses)
    late[150] *= 1 + 3e-4  # one step late in the run, beyond the tolerance
    late[170] *= 1 + 1e-3
    near = [x * (1 + 5e-5) for x in losses]  # within it at every step
    conv = convergence({"step_losses": losses, "val_acc": 0.9}, {"step_losses": late, "val_acc": 0.9})
    assert not conv["ok"] and conv["steps"] == 186 and conv["first_divergent_step"] == 151
    assert "the loss at step 151 differs by 3.00e-04" in conv["why"]
    assert "allowed 0.0001 at each of the 186 steps compared" in conv["why"]
    assert conv["max_rel_loss_diff"] == pytest.approx(1e-3, rel=1e-2)
    ok = convergence({"step_losses": losses, "val_acc": 0.9}, {"step_losses": near, "val_acc": 0.9})
    assert ok["ok"] and ok["max_rel_loss_diff"] == pytest.approx(5e-5, rel=1e-3)
    assert ok["max_abs_loss_diff"] == pytest.approx(2.3 * 5e-5, rel=1e-3)


def test_curves_are_compared_up_to_the_fp32_horizon_only() -> None:
    losses = list(np.linspace(2.3, 0.3, 100))
    # The drift probe: a one-ulp nudge of the weights moved torch's own loss past FP32_DRIFT_RTOL at step 6.
    ulp = [*losses[:5], losses[5] * (1 + 2e-5)]
    chaotic = [x * (1 + 1e-7 * 2**k) for k, x in enumerate(losses)]  # rounding amplified step after step
    torch_m = {"step_losses": losses, "ulp_step_losses": ulp, "val_acc": 0.9}
    conv = convergence(torch_m, {"step_losses": chaotic, "val_acc": 0.905})
    assert fp32_horizon(torch_m) == 5
    assert conv["ok"] and conv["steps"] == 5 and conv["fp32_horizon"] == 5 and conv["run_steps"] == 100
    assert conv["max_rel_loss_diff"] < 1e-5 < 1e-2 < conv["run_max_rel_loss_diff"]
    # A probe that never moved the loss that far: the whole run is compared.
    assert fp32_horizon({"step_losses": losses, "ulp_step_losses": losses}) is None
    whole = convergence({**torch_m, "ulp_step_losses": losses}, {"step_losses": chaotic, "val_acc": 0.9})
    assert not whole["ok"] and whole["steps"] == 100


def test_dropout_compares_no_curve() -> None:
    losses = list(np.linspace(2.3, 1.0, 30))
    other = [x * 1.01 for x in losses]
    conv = convergence(
        {"step_losses": losses, "val_acc": 0.90}, {"step_losses": other, "val_acc": 0.905}, dropout=True
    )
    assert conv["ok"] and conv["steps"] == 0 and np.isnan(conv["max_rel_loss_diff"])
    accs = [0.9, 0.9, 0.9]
    records = [mode("torch-eager", 1.0, accs, losses, 0), mode("torch-compile", 1.0, accs, other, 0)]
    summary = summary_record(records, dropout=True)
    assert summary is not None and summary["status"] == "ok"
    compiled = summary["metrics"]["mode_convergence"]["torch-compile"]
    assert compiled["steps"] == 0 and "dropout" in compiled["not_compared"]


def test_every_mode_is_held_to_its_framework_eager_run() -> None:
    losses = list(np.linspace(2.3, 1.0, 30))
    off = list(losses)
    off[20] *= 1 + 2e-3
    records = [
        mode("torch-eager", 1.0, [0.8, 0.88, 0.9], losses, 0),
        mode("torch-compile", 1.0, [0.8, 0.88, 0.9], off, 1),
        mode("keras-eager", 1.0, [0.8, 0.88, 0.9], losses, 2),
        mode("keras-xla", 1.0, [0.8, 0.88, 0.9], losses, 3),
    ]
    summary = summary_record(records)
    assert summary is not None and summary["status"] == "failed"
    pairs = summary["metrics"]["mode_convergence"]
    assert set(pairs) == {"torch-compile", "keras-xla"}
    assert pairs["keras-xla"]["ok"] and pairs["keras-xla"]["against"] == "keras-eager"
    assert not pairs["torch-compile"]["ok"] and pairs["torch-compile"]["first_divergent_step"] == 21
    assert summary["metrics"]["convergence"]["ok"]  # eager torch and eager Keras still agree
    assert summary["message"].startswith("torch-compile and torch-eager diverge: the loss at step 21 differs")


def test_summary_names_fastest_and_reports_significance() -> None:
    losses = list(np.linspace(2.3, 1.0, 30))
    records = [
        mode("torch-eager", 1.0, [0.80, 0.88, 0.90], losses, 0),
        mode("keras-eager", 30.0, [0.80, 0.88, 0.90], losses, 1),
        mode("keras-graph", 1.0, [0.70, 0.86, 0.89], losses, 2),
    ]
    summary = summary_record(records)
    assert summary is not None and summary["status"] == "ok"
    m = summary["metrics"]
    assert m["target_val_acc"] == 0.95 * 0.90
    assert m["time_to_target_s"] == {"torch-eager": 2.0, "keras-eager": 2.0, "keras-graph": 2.0}
    slow = m["vs_fastest"]["keras-eager"]
    assert slow["ratio"] > 25 and slow["low"] > 1  # clearly slower
    even = m["vs_fastest"].get("keras-graph") or m["vs_fastest"].get("torch-eager")
    assert even["low"] <= 1 <= even["high"]  # same speed: no significant difference
    assert m["convergence"]["ok"]


def test_no_summary_without_finished_modes() -> None:
    assert summary_record([make_record("train", "torch-eager", "failed", message="boom")]) is None


def test_a_loss_that_becomes_nan_fails_the_mode_instead_of_passing() -> None:
    losses = np.array([2.3, 1.9, np.nan, np.nan], np.float32)
    result = WorkerResult(
        "torch",
        True,
        1.0,
        arrays={
            "step_times": np.full(4, 0.01),
            "step_losses": losses,
            "val_acc": np.array([1.0]),
            "epoch_seconds": np.array([0.04]),
        },
        meta={"val_acc": 1.0, "train_acc": 1.0},
    )
    record = mode_record("torch-eager", result, {"batch_size": 8}, train_flops=1000, peaks={})
    assert record["status"] == "failed"
    assert record["message"] == "the loss became nan at step 3 of 4"


def test_convergence_with_dropout_says_why_the_curves_are_not_compared() -> None:
    torch_losses = list(np.linspace(2.3, 1.0, 30))
    keras_losses = [x * 1.05 for x in torch_losses]  # other dropout masks: other losses, by design
    conv = convergence(
        {"step_losses": torch_losses, "val_acc": 0.513},
        {"step_losses": keras_losses, "val_acc": 0.518},
        dropout=True,
    )
    assert conv["ok"] and conv["steps"] == 0
    assert "dropout" in conv["not_compared"]
    compared = convergence(
        {"step_losses": torch_losses, "val_acc": 0.9}, {"step_losses": torch_losses, "val_acc": 0.9}
    )
    assert compared["not_compared"] is None


def test_with_dropout_the_dropout_off_runs_hold_the_curves_and_not_the_final_accuracy() -> None:
    torch_losses = list(np.linspace(2.3, 1.0, 30))
    keras_losses = [x * 1.05 for x in torch_losses]  # other dropout masks: other losses, by design
    off = list(np.linspace(2.3, 1.9, 16))
    torch_m = {"step_losses": torch_losses, "val_acc": 0.365, "dropout_off_step_losses": off}
    keras_m = {"step_losses": keras_losses, "val_acc": 0.458, "dropout_off_step_losses": off}
    conv = convergence(torch_m, keras_m, dropout=True)
    assert conv["ok"] and conv["dropout_off"] and conv["steps"] == 16, conv
    assert conv["val_acc_gap_points"] == pytest.approx(9.3)  # shown, not held
    text = wording.convergence(conv, "classification").sentence
    assert "dropout off" in text and "not held" in text and text.endswith(": ok")
    drifted = [*off[:5], off[5] * 1.01, *off[6:]]
    bad = convergence(torch_m, {**keras_m, "dropout_off_step_losses": drifted}, dropout=True)
    assert not bad["ok"] and bad["first_divergent_step"] == 6, bad


def test_regression_summary_names_its_target_as_an_mse() -> None:
    losses = list(np.linspace(1.5, 1.0, 30))
    records = [
        mode("torch-eager", 1.0, [-1.3, -1.2, -1.1], losses, 0),
        mode("keras-eager", 1.2, [-1.3, -1.2, -1.1], losses, 1),
    ]
    summary = summary_record(records, task="regression")
    assert summary is not None and "target val MSE 1.158 (best 1.1 / 0.95)" in summary["message"]
