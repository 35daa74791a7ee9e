"""`bakeoff run --torch FILE.py:NAME` on a model written without bakeoff in mind: the spec derived from
it, its twin checked against it in the parity stage, the stages run on the derived spec's twins, and a
report and verdict that say so. Bad input is one line before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli.test_cli import assert_one_line_error
from tests.conftest import FIXTURES, bakeoff

NET = f"{FIXTURES / 'single' / 'torch_models.py'}:Net"


@pytest.mark.slow
def test_run_on_a_torch_model_alone(tmp_path: Path) -> None:
    # Two stages and the two eager modes keep it short; every stage takes the same derived graph.
    result = bakeoff(
        *("run", "--torch", NET, "--input-shape", "1,28,28", "--quick", "--out", str(tmp_path)),
        *("--stages", "parity,train", "--modes", "torch-eager,keras-eager"),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert run.name.endswith("-Net")
    assert (run / "spec.yaml").is_file() and (run / "derived" / "twin_keras.py").is_file()
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    own = next(r for r in records if r["stage"] == "parity" and r["case"] == "user-vs-twin")
    assert own["status"] == "ok", own["message"]
    assert "torch_models.py:Net ↔" in own["message"] and "twin_keras.py:model" in own["message"]
    assert {r["case"] for r in records if r["stage"] == "train"} >= {"torch-eager", "keras-eager"}
    # Net has dropout: the eager twins' curves are held with dropout off, the final accuracy is not.
    summary = next(r for r in records if r["stage"] == "train" and r["case"] == "summary")
    conv = summary["metrics"]["convergence"]
    assert conv["ok"] and conv["dropout_off"] and conv["steps"] >= 1, conv
    info = json.loads((run / "run.json").read_text())
    assert info["model"] == "Net" and info["spec"]["layers"][0]["name"] == "conv1"
    assert (
        "the stages measure the twins built from the spec derived from --torch"
        in info["options"]["byo"]["measured"]
    )
    html = (run / "report.html").read_text()
    assert "Parity of your model against its twin" in html and "Your own model: the stages measure" in html
    verdict = json.loads((run / "results.json").read_text())["verdict"]
    assert verdict["headline"]
    assert any(c.startswith("Your own model:") for c in verdict["caveats"])


@pytest.mark.slow
def test_a_failing_pair_is_recorded_and_the_verdict_says_so(tmp_path: Path) -> None:
    """The pair differs in BatchNorm's defaults: the run goes on (its twins are the torch model's,
    which match it) but the parity record, the report and the verdict show the failure first."""
    pairs = FIXTURES / "pairs"
    result = bakeoff(
        *("run", "--torch", f"{pairs / 'torch_models.py'}:TabularNet", "--input-shape", "20"),
        *(
            "--keras",
            f"{pairs / 'keras_models.py'}:tabular_net",
            "--stages",
            "parity",
            "--out",
            str(tmp_path),
        ),
        timeout=300,
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = {r["case"]: r for r in map(json.loads, (run / "records.jsonl").read_text().splitlines())}
    assert records["outputs"]["status"] == "ok" and records["user-vs-twin"]["status"] == "ok"
    assert records["user-pair"]["status"] == "failed"
    assert "BatchNorm epsilon differs" in records["user-pair"]["message"]
    caveats = json.loads((run / "results.json").read_text())["verdict"]["caveats"]
    assert caveats[0].startswith("parity of your own pair FAILED")
    assert "Parity of your pair" in (run / "report.html").read_text()


def test_own_model_mistakes_are_one_line(tmp_path: Path) -> None:
    missing = bakeoff("run", "--torch", "nowhere.py:Net", "--input-shape", "784", "--out", str(tmp_path))
    assert_one_line_error(missing, 2, "--torch 'nowhere.py:Net': file 'nowhere.py' does not exist")
    no_shape = bakeoff("parity", "--keras", NET, "--out", str(tmp_path))
    assert_one_line_error(no_shape, 2, "need --input-shape")
    # every stage command takes --torch
    for command in ("debug", "distributed", "train", "infer", "export", "convert"):
        no_shape = bakeoff(command, "--torch", NET, "--out", str(tmp_path))
        assert_one_line_error(no_shape, 2, "need --input-shape")
    both = bakeoff("run", "lenet", "--torch", NET, "--input-shape", "784", "--out", str(tmp_path))
    assert_one_line_error(both, 2, "give either a MODEL or --torch/--keras, not both")
    assert not any(tmp_path.iterdir())


TABULAR = """
import torch
from torch import nn


class Tab(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.body(x))
"""


@pytest.mark.slow
def test_export_writes_your_models_twin_for_a_server(tmp_path: Path) -> None:
    (tmp_path / "tab.py").write_text(TABULAR)
    deploy = tmp_path / "deploy"
    args = ("export", "--torch", f"{tmp_path / 'tab.py'}:Tab", "--input-shape", "12", "--epochs", "1")
    done = bakeoff(*args, "--to", str(deploy), "--out", str(tmp_path / "runs"), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"wrote {deploy / 'Tab.onnx'}" in " ".join(done.stdout.split())
    import onnxruntime as ort

    session = ort.InferenceSession(str(deploy / "Tab.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 12), np.float32)})
    assert out.shape == (2, 3)
    # The layout is checked before anything is derived or trained: the file is there now.
    again = bakeoff(*args, "--to", str(deploy), "--out", str(tmp_path / "runs"))
    assert_one_line_error(again, 2, "Tab.onnx already exists")
    two = (*args[:3], "--input-shape", "12", "--input-shape", "3", "--target", "torchserve")
    refused = bakeoff(*two, "--to", str(deploy), "--out", str(tmp_path / "runs"))
    assert_one_line_error(refused, 2, "bakeoff's handler feeds one input tensor; this model has 2")
    assert len(list((tmp_path / "runs").iterdir())) == 1


@pytest.mark.slow
def test_distributed_takes_your_model_too(tmp_path: Path) -> None:
    """debug and distributed take --torch/--keras as run and train do (the same user_model plumbing):
    Net has dropout, which the distributed stage refuses (each worker would draw its own masks), and the
    refusal comes from the spec derived from the user's file, before any worker starts."""
    refused = bakeoff(
        *("distributed", "--torch", NET, "--input-shape", "1,28,28", "--out", str(tmp_path / "dist")),
        timeout=300,
    )
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    # One error line, after the note on how --input-shape was read.
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith("error: the distributed stage needs a model without")
    )
