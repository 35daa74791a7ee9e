"""Export and inference tables from stored records: what a regression model and a NaN output show."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from bakeoff.report.terminal import export_tables, infer_tables
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
