"""The verdict's 'Keras off TensorFlow' row on hand-made records: Keras on PyTorch or JAX loses a
dimension only where the CI against Keras on TensorFlow lies outside the margin, failed parity or a
diverging loss curve is a loss, and the row never votes. No frameworks are started."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bakeoff.report.verdict import Constraints, recommend
from bakeoff.results.run import load_run
from bakeoff.results.store import make_record
from tests.report.test_verdict import _infer, _run, _train


def _backends_row(path: Path) -> dict:
    verdict = recommend(load_run(path), Constraints())
    rows = [d for d in verdict.dimensions if d.name == "keras-backends"]
    assert len(rows) == 1 and rows[0].weight == 0 and rows[0].winner is None
    return {"finding": rows[0].finding, "reasons": "\n".join(rows[0].reasons), "overall": verdict.overall}


def _parity(backend: str, framework: str, diff: float, status: str = "ok") -> dict:
    metrics = {"max_abs_diff": diff, "max_abs_diff_vs_tensorflow": diff / 2, "grad_max_abs_diff": 1e-7}
    return make_record(
        "backends", backend, status, framework=framework, metrics=metrics, settings={"atol": 1e-5}
    )


def _summary(curves: dict[str, dict]) -> dict:
    return make_record("train", "summary", "ok", metrics={"mode_convergence": curves, "time_to_target_s": {}})


def _curve(ok: bool) -> dict:
    return {
        "against": "keras-eager",
        "ok": ok,
        "steps": 24,
        "max_rel_loss_diff": 3e-7 if ok else 2e-3,
        "loss_rtol": 1e-4,
        "not_compared": None,
        "why": "" if ok else "the loss at step 7 differs by 2.00e-03",
    }


def test_a_slower_backend_loses_training_speed_and_a_faster_one_gains(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    records = [
        _train("torch-eager", "torch", 0.010, rng),
        _train("keras-eager", "keras", 0.010, rng),
        _train("keras-torch-eager", "keras-torch", 0.020, rng),  # twice as slow
        _train("keras-jax-jit", "keras-jax", 0.002, rng),  # five times as fast
        _parity("torch", "keras-torch", 3e-7),
        _parity("jax", "keras-jax", 4e-7),
        _summary({"keras-torch-eager": _curve(True), "keras-jax-jit": _curve(True)}),
    ]
    row = _backends_row(_run(tmp_path, records))
    torch_part, jax_part = row["finding"].split("; Keras on JAX")
    assert torch_part.startswith("Keras on PyTorch loses training speed")
    assert "gains training speed" in jax_part and "loses nothing measured" in jax_part
    assert "outputs 3.0e-07 from the PyTorch twin" in row["reasons"]
    assert "keras-jax-jit loss curve against keras-eager: max relative difference 3.0e-07" in row["reasons"]


def test_equal_speed_and_agreement_lose_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    records = [
        _train("keras-eager", "keras", 0.010, rng),
        _train("keras-torch-eager", "keras-torch", 0.010, rng),
        _parity("torch", "keras-torch", 3e-7),
        _summary({"keras-torch-eager": _curve(True)}),
        _infer("keras-tf/keras-twin", "keras", 0.001, rng),
        _infer("keras-torch/keras-twin", "keras-torch", 0.001, rng),
    ]
    row = _backends_row(_run(tmp_path, records))
    assert row["finding"] == "Keras on PyTorch loses nothing measured"
    assert "no practical difference" in row["reasons"]
    assert "inference at batch 1: keras-torch/keras-twin" in row["reasons"]


def test_failed_parity_and_a_diverging_curve_are_losses(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    records = [
        _train("keras-eager", "keras", 0.010, rng),
        _train("keras-jax-eager", "keras-jax", 0.010, rng),
        make_record(
            "backends", "jax", "failed", framework="keras-jax", message="parity FAILED: layer1", metrics={}
        ),
        _summary({"keras-jax-eager": _curve(False)}),
    ]
    row = _backends_row(_run(tmp_path, records))
    assert "parity (parity FAILED: layer1)" in row["finding"]
    assert "keras-jax-eager's loss curve (the loss at step 7" in row["finding"]


def test_a_run_without_backends_has_no_such_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    path = _run(
        tmp_path, [_train("torch-eager", "torch", 0.01, rng), _train("keras-eager", "keras", 0.01, rng)]
    )
    assert not [d for d in recommend(load_run(path), Constraints()).dimensions if d.name == "keras-backends"]


def test_a_busy_machine_decides_no_speed_loss(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    records = [
        _train("keras-eager", "keras", 0.010, rng),
        _train("keras-torch-eager", "keras-torch", 0.030, rng),  # three times as slow, but measured busy
    ]
    path = _run(tmp_path, records)
    info = json.loads((path / "run.json").read_text())
    info["guard"] = {"train": {"noisy": True, "why": "other processes used 1.9 of 2 cores"}}
    (path / "run.json").write_text(json.dumps(info))
    row = _backends_row(path)
    assert row["finding"] == (
        "Keras on PyTorch loses nothing measured (speed not decided: the machine was busy)"
    )
    assert "training speed (fastest mode: keras-eager is" in row["reasons"]
    assert "not decided, the machine was busy" in row["reasons"]


def test_a_busy_inference_stage_decides_no_latency_gain(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    records = [
        _infer("keras-tf/keras-twin", "keras", 0.003, rng),
        _infer("keras-jax/keras-twin", "keras-jax", 0.001, rng),  # three times as fast, but measured busy
    ]
    path = _run(tmp_path, records)
    info = json.loads((path / "run.json").read_text())
    info["guard"] = {"infer": {"noisy": True, "why": "other processes used 1.9 of 2 cores"}}
    (path / "run.json").write_text(json.dumps(info))
    row = _backends_row(path)
    assert row["finding"] == "Keras on JAX loses nothing measured (speed not decided: the machine was busy)"
    assert "inference latency at batch 1 (keras-jax is" in row["reasons"]
