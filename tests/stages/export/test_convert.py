"""`bakeoff convert` through the real CLI: PyTorch -> ONNX -> TensorFlow (onnx2tf, its own env) and
Keras -> ONNX -> PyTorch (onnx2torch), each checked against the model it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakeoff.stages.export.converters.onnx2tf_env import ensure_env
from tests.conftest import bakeoff

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converter_env() -> Path:
    return ensure_env()  # creates onnx2tf's virtualenv once (about 90 s) when this machine has none


def test_lenet_crosses_both_ways_with_parity(converter_env: Path, tmp_path: Path) -> None:
    result = bakeoff(
        "convert", "lenet", "--epochs", "1", "--out", str(tmp_path), "--json",
        env={"BAKEOFF_CONVERTER_ENV": str(converter_env)}, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    records = {r["case"]: r for r in json.loads(result.stdout)["records"] if r["stage"] == "export"}
    for case, runtime in (("torch-onnx-tf", "tf-savedmodel"), ("keras-onnx-torch", "onnx2torch")):
        record = records[case]
        assert record["status"] == "ok", record["message"]
        v = record["metrics"]["verification"]
        assert v["max_abs_diff"] < 1e-4 and v["top1_agreement"] == 1.0 and v["samples"] == 1000
        assert record["metrics"]["verified_with"] == runtime
    # Compared with the model each came from: the PyTorch twin and the Keras twin.
    assert (
        records["torch-onnx-tf"]["framework"] == "torch"
        and records["keras-onnx-torch"]["framework"] == "keras"
    )


def test_missing_converter_env_is_one_line_naming_the_setup(tmp_path: Path) -> None:
    missing = tmp_path / "no-env"
    result = bakeoff("convert", "lenet", "--out", str(tmp_path), env={"BAKEOFF_CONVERTER_ENV": str(missing)})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert (
        f"the onnx2tf environment is missing at {missing}: create it with `bakeoff convert --setup`" in line
    )
    assert not missing.exists() and not list(tmp_path.glob("*-lenet"))  # nothing made, nothing run
