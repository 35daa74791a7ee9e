"""The report's charts from hand-made digests and records (matplotlib only, no workers): what each one
draws so that a reader does not misread it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bakeoff.report import plots
from bakeoff.results.run import Run
from bakeoff.results.store import make_record


def texts(svg: str | None) -> list[str]:
    """The visible text of a chart (matplotlib writes text as <text> with svg.fonttype none)."""
    assert svg is not None
    return [re.sub(r"<[^>]+>", "", t).strip() for t in re.findall(r"<text\b.*?</text>", svg, flags=re.S)]


def artifact(name: str, family: str, kb: float, relative: float) -> dict[str, Any]:
    return {
        "artifact": name,
        "family": family,
        "status": "ok",
        "size_bytes": kb * 1024,
        "relative_accuracy": relative,
    }


def test_artifact_points_are_numbered_and_points_on_top_of_each_other_share_one_label() -> None:
    export = {
        "artifacts": [
            artifact("torch-twin", "PyTorch", 399, 1.0),
            artifact("torch-pt2", "PyTorch", 400, 1.0),
            artifact("keras-onnx", "TensorFlow", 399, 1.0),
            artifact("keras-tflite-fp32", "TensorFlow", 399.5, 1.0),
            artifact("torch-onnx-int8-dynamic", "PyTorch", 104, 0.9942),
            artifact("keras-onnx-int8-dynamic", "TensorFlow", 104, 0.9942),
            artifact("keras-savedmodel", "TensorFlow", 827, 1.0),
        ]
    }
    shown = texts(plots.artifacts(export))
    assert not any("torch-" in t or "keras-" in t for t in shown), shown  # names live in the table
    assert "1, 2, 3, 4" in shown and "5, 6" in shown and "7" in shown


def test_regression_artifacts_chart_the_mse_against_fp32_without_the_accuracy_gate() -> None:
    rows = [artifact("torch-twin", "PyTorch", 3, 1.0), artifact("torch-onnx-int8-static", "PyTorch", 1, 1.12)]
    export = {"artifacts": rows}
    shown = " ".join(texts(plots.artifacts(export, "regression")))
    assert "lower is better" in shown and "99% gate" not in shown


def infer_case(runtime: str, artifact: str, family: str, ms: float) -> dict[str, Any]:
    batches = {b: {"p50_ms": ms * b**0.5, "samples_per_s": b / ms * 1e3} for b in (1, 256)}
    return {
        "case": f"{runtime}/{artifact}",
        "runtime": runtime,
        "artifact": artifact,
        "family": family,
        "status": "ok",
        "batches": batches,
    }


def test_latency_lines_are_told_apart_by_style_and_carry_no_legend_over_them() -> None:
    cases = [infer_case("torch-eager", "torch-twin", "PyTorch", 0.1)]
    cases += [infer_case("onnxruntime", a, f, 0.02 * (i + 1)) for i, (a, f) in enumerate(ONNX)]
    cases += [infer_case("litert", f"keras-tflite-{p}", "TensorFlow", 0.01) for p in ("fp32", "fp16", "int8")]
    infer = {"cases": cases}
    styles = plots.latency_styles(infer)
    assert len(set(styles.values())) == len(cases)  # every line its own colour, dash and marker
    by_runtime = {c["runtime"]: styles[c["case"]][0] for c in cases}
    assert len(set(by_runtime.values())) == 3  # one colour per runtime
    assert {styles[c["case"]][1] for c in cases if c["family"] == "TensorFlow"} == {"--"}
    assert not any("/" in t for t in texts(plots.latency_by_batch(infer)))  # no legend of case names
    swatch = plots.swatch(styles["onnxruntime/keras-onnx"])
    assert swatch.startswith("<svg") and "stroke-dasharray" in swatch and "<text" not in swatch


ONNX = [
    ("torch-onnx", "PyTorch"),
    ("keras-onnx", "TensorFlow"),
    ("torch-onnx-int8-dynamic", "PyTorch"),
    ("torch-onnx-int8-static", "PyTorch"),
    ("keras-onnx-int8-dynamic", "TensorFlow"),
    ("keras-onnx-int8-static", "TensorFlow"),
]


def train_record(mode: str, losses: list[float]) -> dict[str, Any]:
    metrics = {"step_times": [0.5, 0.01, 0.011, 0.012], "step_losses": losses}
    return make_record("train", mode, "ok", framework=mode.split("-")[0], metrics=metrics)


def test_loss_curves_on_top_of_each_other_are_named_and_drawn_once() -> None:
    losses = [2.3, 2.0, 1.7, 1.5, 1.4]
    apart = [2.3, 2.1, 1.9, 1.8, 1.7]
    records = [
        train_record("torch-eager", losses),
        train_record("torch-compile", losses),
        train_record("keras-eager", [x * (1 + 1e-5) for x in losses]),  # fp32 sums in another order
        train_record("keras-graph", apart),
    ]
    run = Run(Path("run"), {}, records)
    assert plots.overlapping_losses(run) == [["torch-eager", "torch-compile", "keras-eager"]]
    svg = plots.train_losses(run)
    lines = re.findall(r'<g id="line2d_\d+">\s*<path d="[^"]*"\s+clip-path', svg or "")  # data, not legend
    assert len(lines) == 2  # two lines, not four
    assert any("(overlap)" in t for t in texts(svg))


def test_parity_chart_draws_points_against_the_tolerance_and_marks_exact_zeros() -> None:
    layers = [
        {"layer": "conv1", "max_abs": 4.8e-7, "ok": True},
        {"layer": "flatten", "max_abs": 0.0, "ok": True},
        {"layer": "logits", "max_abs": 3e-5, "ok": False},
    ]
    shown = texts(plots.parity_layers({"layers": layers, "atol": 1e-5}))
    for label in ("within tolerance", "0 (identical)", "diverges", "tolerance 1e-05"):
        assert label in shown, shown
