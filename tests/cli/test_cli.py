"""The `bakeoff` command as a user runs it: a real subprocess, real exit codes, real messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import bakeoff


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_commands_without_heavy_imports() -> None:
    result = bakeoff("--help")
    assert result.returncode == 0
    for command in ("zoo", "show", "parity", "run"):
        assert command in result.stdout
    probe = (
        "import sys\nfrom bakeoff.cli import app\n"
        "print(','.join(m for m in ('torch', 'tensorflow', 'keras', 'numpy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_zoo_json() -> None:
    result = bakeoff("zoo", "--json")
    assert result.returncode == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"simplenet", "lenet", "resnet-mini", "transformer-tiny", "lstm-tiny"}
    assert rows["simplenet"]["params"] == 101_770
    assert rows["simplenet"]["flops_per_sample"] == 203_264
    assert rows["lenet"]["inputs"] == {"image": [[28, 28, 1], "float32"]}


def test_zoo_table() -> None:
    result = bakeoff("zoo")
    assert result.returncode == 0
    assert "transformer-tiny" in result.stdout and "101,770" in result.stdout


def test_show_layers() -> None:
    result = bakeoff("show", "lenet")
    assert result.returncode == 0
    assert "fc1" in result.stdout and "[5, 5, 16]" in result.stdout and "61,706 parameters" in result.stdout


def test_show_unknown_model_is_usage_error() -> None:
    assert_one_line_error(bakeoff("show", "vgg99"), 2, "'vgg99' is neither a zoo model", "simplenet")


def test_show_bad_spec_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ninputs: [{name: x, shape: [4]}]\nlayers:\n  - {type: wobble}\ntask: {type: regression}\n"
    )
    assert_one_line_error(
        bakeoff("show", str(path)), 2, "line 4", "unknown layer type 'wobble'", "valid types:"
    )


def test_show_incompatible_shapes(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ninputs: [{name: x, shape: [8, 8, 1]}]\nlayers:\n  - {type: dense, units: 3}\n"
        "task: {type: regression}\n"
    )
    assert_one_line_error(
        bakeoff("show", str(path)), 2, "layer 'dense_0' (dense) cannot take input of shape [8, 8, 1]"
    )


@pytest.mark.slow
def test_parity_json_passes() -> None:
    result = bakeoff("parity", "simplenet", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["first_divergent"] is None
    assert data["output_max_abs"] <= 1e-5
    assert [layer["layer"] for layer in data["layers"]] == ["layer1", "layer2"]


@pytest.mark.slow
def test_parity_failure_exits_1_and_names_layer() -> None:
    result = bakeoff("parity", "simplenet", "--atol", "1e-12")
    assert result.returncode == 1
    assert "first divergent layer 'layer1'" in result.stdout


@pytest.mark.slow
def test_parity_seed_snippets_through_cli(fixtures: Path) -> None:
    result = bakeoff(
        "parity",
        "--torch",
        f"{fixtures}/seed_torch.py:SimpleNet",
        "--keras",
        f"{fixtures}/seed_keras.py:model",
        "--input-shape",
        "784",
    )
    assert result.returncode == 0, result.stderr
    assert "parity ok" in result.stdout and "layer1 ↔ dense" in result.stdout


@pytest.mark.slow
def test_parity_unmatchable_pair_is_usage_error(fixtures: Path) -> None:
    result = bakeoff(
        "parity",
        "--torch",
        f"{fixtures}/seed_torch.py:SimpleNet",
        "--keras",
        f"{fixtures}/keras_models.py:too_narrow",
        "--input-shape",
        "784",
    )
    assert_one_line_error(result, 2, "layer 1: torch 'layer1' (Linear)", "[784, 64]")


def test_parity_missing_file_is_usage_error(tmp_path: Path) -> None:
    result = bakeoff(
        "parity",
        "--torch",
        f"{tmp_path}/nets.py:Net",
        "--keras",
        f"{tmp_path}/nets.py:net",
        "--input-shape",
        "4",
    )
    assert_one_line_error(result, 2, "does not exist")


def test_parity_own_model_or_pair_needs_a_shape(fixtures: Path) -> None:
    # One side alone is a model to derive a twin from; it still needs its input shape.
    assert_one_line_error(
        bakeoff("parity", "--torch", f"{fixtures}/seed_torch.py:SimpleNet"), 2, "need --input-shape"
    )
    assert_one_line_error(
        bakeoff(
            "parity",
            "--torch",
            f"{fixtures}/seed_torch.py:SimpleNet",
            "--keras",
            f"{fixtures}/seed_keras.py:model",
        ),
        2,
        "--input-shape",
    )
    assert_one_line_error(
        bakeoff(
            "parity",
            "--torch",
            f"{fixtures}/seed_torch.py:SimpleNet",
            "--keras",
            f"{fixtures}/seed_keras.py:model",
            "--input-shape",
            "7,x",
        ),
        2,
        "positive integers",
    )


def test_run_unknown_stage_is_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(
        bakeoff("run", "--stages", "parity,bake", "--out", str(tmp_path)),
        2,
        "unknown stage(s) bake",
        "available: parity",
    )
    assert not list(tmp_path.iterdir())  # nothing half-made


@pytest.mark.slow
def test_run_writes_run_directory(tmp_path: Path) -> None:
    result = bakeoff("run", "simplenet", "--stages", "parity", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "all checks passed" in result.stdout
    (run_dir,) = tmp_path.iterdir()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["model"] == "simplenet" and info["params"] == 101_770
    assert info["environment"]["libraries"]["torch"].startswith("2.13.0")
    assert info["options"]["threads"] >= 1
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["case"], r["status"]) for r in records] == [
        ("parity", "outputs", "ok"),
        ("parity", "layers", "ok"),
        ("parity", "gradients", "ok"),
    ]
    assert records[0]["settings"]["precision"] == "fp32"
    assert (run_dir / "artifacts").is_dir()


@pytest.mark.slow
def test_quick_run_covers_every_stage(quick_run: Path) -> None:
    stdout = (quick_run.parent / "stdout.txt").read_text()
    for heading in (
        "parity of simplenet",
        "speed (step times",
        "input pipelines",
        "input-bound?",
        "artifacts (verified",
        "inference latency ms",
    ):
        assert heading in stdout
    run_dir = quick_run
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    stages = {(r["stage"], r["case"]) for r in records}
    assert {
        ("parity", "gradients"),
        ("train", "keras-xla"),
        ("train", "summary"),
        ("pipeline", "tf.data/autotune"),
        ("pipeline", "dataloader/workers=0"),
        ("pipeline", "input-bound"),
        ("export", "keras-tflite-int8"),
        ("export", "torch-onnx-int8-static"),
        ("infer", "onnxruntime/torch-onnx"),
        ("infer", "litert/keras-tflite-fp32"),
        ("infer", "summary"),
    } <= stages
    assert all(r["status"] == "ok" for r in records), [r["message"] for r in records if r["status"] != "ok"]
    assert json.loads((run_dir / "run.json").read_text())["options"]["train"]["epochs"] == 1


def test_out_that_is_a_file_is_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(
        bakeoff("run", "--stages", "parity", "--out", str(blocker)), 2, "cannot write there"
    )


def test_resume_of_something_that_is_not_a_run(tmp_path: Path) -> None:
    assert_one_line_error(bakeoff("run", "--resume", str(tmp_path)), 2, "not a run directory (no run.json)")
    (tmp_path / "run.json").write_text("{not json")
    assert_one_line_error(bakeoff("run", "--resume", str(tmp_path)), 2, "run.json is damaged")


def test_labels_outside_the_classes_are_refused(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "d.npz", x=np.zeros((50, 784), np.float32), y=np.arange(50))
    result = bakeoff("train", "simplenet", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "runs"))
    assert_one_line_error(result, 2, "labels must lie in [0, 10), found 0..49")


@pytest.mark.slow
def test_parity_reads_a_channels_first_image_shape_and_says_so(fixtures: Path) -> None:
    pairs = fixtures / "pairs"
    result = bakeoff(
        "parity",
        "--torch",
        f"{pairs}/torch_models.py:LeNet",
        "--keras",
        f"{pairs}/keras_models.py:lenet",
        "--input-shape",
        "1,28,28",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--input-shape 1,28,28: read as channels-first (C,H,W)" in result.stderr
    assert "parity ok" in result.stdout


def test_match_defaults_is_for_a_pair() -> None:
    assert_one_line_error(
        bakeoff("parity", "lenet", "--match-defaults"), 2, "--match-defaults is for your own pair"
    )
