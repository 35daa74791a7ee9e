"""Keras 3 on PyTorch and on JAX as extra contenders, through the real CLI and real workers: the backends
parity stage, their training modes held to eager Keras on TensorFlow, their inference runtimes on the
keras-twin artifact, the verdict's 'Keras off TensorFlow' row and the keras3-backends claim.

One shared `bakeoff run --quick` (module-scoped): simplenet, the cheapest mode of each backend, a single
artifact, so the whole module stays near a minute on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bakeoff.claims.check import check_claims
from bakeoff.claims.rules import HOLDS
from bakeoff.results.run import load_run
from bakeoff.stages.train.training import CONVERGENCE_LOSS_RTOL
from tests.conftest import bakeoff

pytestmark = pytest.mark.slow

MODES = "keras-eager,keras-torch-eager,keras-jax-jit"


@pytest.fixture(scope="module")
def backends_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("backends")
    args = ["run", "simplenet", "--quick", "--stages", "train,export,infer", "--backends", "torch,jax"]
    args += ["--modes", MODES, "--artifacts", "keras-twin", "--runtimes", "keras-tf", "--batch-sizes", "1,32"]
    result = bakeoff(*args, "--out", str(out), "--json", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(result.stdout)
    return Path(data["run_dir"]), data


def _by_case(data: dict[str, Any], stage: str) -> dict[str, dict[str, Any]]:
    return {r["case"]: r for r in data["records"] if r["stage"] == stage}


def test_keras_twin_computes_the_same_on_every_backend(backends_run: tuple[Path, dict[str, Any]]) -> None:
    _, data = backends_run
    parity = _by_case(data, "backends")
    assert set(parity) == {"tensorflow", "torch", "jax"}  # --backends adds the stage itself
    for backend, record in parity.items():
        m = record["metrics"]
        assert record["status"] == "ok", record["message"]
        assert m["versions"]["keras_backend"] == backend
        assert 0 < m["max_abs_diff"] <= record["settings"]["atol"]  # against the PyTorch twin
        assert m["grad_max_abs_diff"] <= record["settings"]["grad_atol"]
        assert m["first_divergent"] is None
    for backend in ("torch", "jax"):
        vs_tf = parity[backend]["metrics"]["max_abs_diff_vs_tensorflow"]
        assert 0 < vs_tf < 1e-5 and backend in parity[backend]["metrics"]["versions"]
        assert "tensorflow" not in parity[backend]["metrics"]["versions"]  # never loaded beside it


def test_keras_on_torch_and_jax_train_like_keras_on_tensorflow(
    backends_run: tuple[Path, dict[str, Any]],
) -> None:
    _, data = backends_run
    train = _by_case(data, "train")
    reference = np.array(train["keras-eager"]["metrics"]["step_losses"])
    assert len(reference) == 24  # --quick: two dozen steps
    for mode, worker in (("keras-torch-eager", "keras-torch"), ("keras-jax-jit", "keras-jax")):
        record = train[mode]
        assert record["status"] == "ok" and record["framework"] == worker, record["message"]
        m = record["metrics"]
        assert m["keras_backend"] == worker.split("-")[1] and m["samples_per_s"]["median"] > 0
        losses = np.array(m["step_losses"])
        rel = np.abs(losses - reference) / np.abs(reference)
        assert rel.max() < CONVERGENCE_LOSS_RTOL, (mode, rel.max())
        assert abs(m["val_acc"] - train["keras-eager"]["metrics"]["val_acc"]) <= 0.01
        assert train["peak"]["status"] == "ok"
    curves = train["summary"]["metrics"]["mode_convergence"]
    assert set(curves) == {"keras-torch-eager", "keras-jax-jit"}
    for mode, c in curves.items():
        assert c["against"] == "keras-eager" and c["ok"] and c["steps"] == 24, (mode, c)
    assert {r["framework"] for r in data["records"] if r["case"] == "peak"} == {
        "keras",
        "keras-torch",
        "keras-jax",
    }


def test_keras_backends_join_the_inference_table(backends_run: tuple[Path, dict[str, Any]]) -> None:
    _, data = backends_run
    infer = _by_case(data, "infer")
    for runtime in ("keras-tf", "keras-torch", "keras-jax"):
        record = infer[f"{runtime}/keras-twin"]
        assert record["status"] == "ok", record["message"]
        quality = record["metrics"]["quality"]
        assert quality["max_abs_diff"] < 1e-4  # against Keras on TensorFlow's reference outputs
        assert set(record["metrics"]["batches"]) == {"1", "32"}
    assert not any(c.startswith("torch-eager/") for c in infer)  # only what was asked for ran


def test_verdict_says_what_leaving_tensorflow_costs(backends_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = backends_run
    results = json.loads((run_dir / "results.json").read_text())
    (row,) = [d for d in results["verdict"]["dimensions"] if d["name"] == "keras-backends"]
    assert row["weight"] == 0 and row["winner"] is None  # informs, never scores
    for name in ("Keras on PyTorch", "Keras on JAX"):
        assert name in row["finding"]
    reasons = "\n".join(row["reasons"])
    assert "keras-torch-eager loss curve against keras-eager" in reasons
    assert "training step (eager): keras-torch-eager" in reasons and "CI" in reasons
    assert "inference at batch 32: keras-jax/keras-twin" in reasons
    summary = (run_dir / "summary.md").read_text()
    assert "Keras off TensorFlow" in summary


def test_keras3_backends_claim_holds(backends_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = backends_run
    (checked,) = [c for c in check_claims(load_run(run_dir)) if c.claim.id == "keras3-backends"]
    assert checked.finding.status == HOLDS, checked.finding.summary


def test_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    result = bakeoff("train", "simplenet", "--backends", "tensorflow", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--backends: 'tensorflow' is not one of torch, jax" in result.stdout + result.stderr
    assert not list(tmp_path.iterdir())  # refused before a run directory was made
