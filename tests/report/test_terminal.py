"""Training, export and inference tables from stored records: what a regression model, a model with
dropout and a NaN output show."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from bakeoff.report.terminal import export_tables, infer_tables, train_tables
from bakeoff.results.store import clean, make_record


def _render(parts: list[Any]) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    for part in parts:
        console.print(part)
    return buffer.getvalue()


def _infer(quality: dict[str, Any]) -> dict[str, Any]:
    stats = {"median": 1e-4, "p99": 2e-4, "n": 10}
    metrics = {
        "batches": {"1": {"stats": stats, "samples_per_s": 1e4}},
        "quality": quality,
        "load_s": 0.01,
        "first_inference_s": 0.001,
        "precision": "fp32",
        "gate": "pass",
    }
    settings = {"batch_sizes": [1], "threads": 2}
    return clean(make_record("infer", "onnxruntime/torch-onnx", "ok", metrics=metrics, settings=settings))


def test_regression_scores_are_shown_as_mse_not_accuracy_points() -> None:
    quality = {"accuracy": -0.02, "reference_accuracy": -0.016, "max_abs_diff": 1e-6, "output_scale": 1.0}
    text = _render(infer_tables([_infer(quality)]))
    assert "MSE 0.02" in text and "MSE +25.0%" in text and "pts" not in text


def test_classification_delta_is_in_points_and_p99_needs_100_calls() -> None:
    quality = {"accuracy": 0.9, "reference_accuracy": 0.91, "top1_agreement": 0.99, "max_abs_diff": 1.0}
    text = _render(infer_tables([_infer(quality)]))
    assert "-1.00 pts" in text and "0.1 / -" in text  # p50 0.1 ms; p99 of 10 calls is not shown


def test_nan_outputs_render_as_na_instead_of_crashing() -> None:
    verification = {"max_abs_diff": float("nan"), "accuracy": float("nan"), "reference_accuracy": 0.9}
    record = clean(
        make_record(
            "export",
            "keras-tflite-fp16",
            "failed",
            message="WRONG OUTPUTS",
            metrics={"verification": verification},
        )
    )
    assert "n/a" in _render(export_tables([record]))
    assert "n/a" in _render(infer_tables([_infer({**verification, "output_scale": 1.0})]))


def _trained(mode: str, val: float, train: float, task: str) -> dict[str, Any]:
    metrics = {
        "step_s": {"median": 0.01, "iqr": 0.001, "noisy": False},
        "first_step_s": 0.5,
        "samples_per_s": {"median": 6400.0},
        "gflops": 1.0,
        "utilization": 0.1,
        "val_acc": val,
        "train_acc": train,
        "resources": {},
    }
    settings = {
        "epochs": 1,
        "batch_size": 64,
        "lr": 1e-3,
        "threads": 2,
        "device": "cpu",
        "data": {"name": "synthetic", "train": 1536, "val": 409},
        "task": task,
    }
    return make_record("train", mode, "ok", framework=mode.split("-")[0], metrics=metrics, settings=settings)


def _summary(convergence: dict[str, Any], target: float, best: float) -> dict[str, Any]:
    metrics = {
        "target_val_acc": target,
        "best_val_acc": best,
        "time_to_target_s": {"torch-eager": 1.0, "keras-eager": 2.0},
        "fastest": "torch-eager",
        "vs_fastest": {},
        "convergence": convergence,
    }
    return clean(make_record("train", "summary", "ok", metrics=metrics))


def test_regression_training_shows_the_validation_mse_not_a_negative_accuracy() -> None:
    conv = {"steps": 10, "max_rel_loss_diff": 4e-6, "val_acc_gap_points": 0.0, "ok": True, "why": ""}
    records = [
        _trained("torch-eager", -1.096, -0.97, "regression"),
        _trained("keras-eager", -1.096, -0.97, "regression"),
        _summary(conv, -1.096 / 0.95, -1.096),
    ]
    text = " ".join(_render(train_tables(records)).split())  # as read, whatever the terminal's wrapping
    assert "val MSE" in text and "1.096" in text and "-1.096" not in text and "val acc" not in text
    assert "validation MSE 1.154" in text and "final validation MSE differs by 0.00%" in text


def test_dropout_convergence_says_the_curves_could_not_be_compared() -> None:
    # As a run with dropout records it: no steps compared, the loss difference a NaN stored as null.
    conv = {"steps": 0, "max_rel_loss_diff": None, "val_acc_gap_points": 0.49, "ok": True, "why": ""}
    records = [
        _trained("torch-eager", 0.513, 0.6, "classification"),
        _trained("keras-eager", 0.518, 0.6, "classification"),
        _summary(conv, 0.492, 0.518),
    ]
    text = " ".join(_render(train_tables(records)).split())
    assert "per-step losses not compared (the model has dropout" in text
    assert "final validation accuracy gap 0.49 points" in text and "None" not in text
