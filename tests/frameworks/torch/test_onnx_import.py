"""onnx2torch import: ONNX made by torch and by Keras loads as a torch module that answers the same."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.fixtures.onnx_models import (
    MODELS,
    OnnxCase,
    onnx_cases,
    write_roi_align_model,
    write_unsupported_op_model,
)

from bakeoff.errors import BakeoffError, UsageError
from bakeoff.frameworks.torch import onnx_import
from bakeoff.frameworks.torch.onnx_import import load_onnx


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OnnxCase]:
    return onnx_cases(tmp_path_factory.getbasetemp() / "onnx-models")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_converted_module_answers_like_its_source(cases: dict[str, OnnxCase], name: str) -> None:
    case = cases[name]
    module = load_onnx(case.onnx)
    assert not module.training
    with torch.no_grad():
        answer = module(torch.from_numpy(case.batch)).numpy()
    assert answer.shape == case.expected.shape
    assert np.abs(answer - case.expected).max() <= 1e-5


def test_corrupt_file_is_one_line_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(UsageError, match="is not a readable ONNX model") as caught:
        load_onnx(path)
    assert "\n" not in str(caught.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ONNX file not found"):
        load_onnx(tmp_path / "absent.onnx")


def test_unsupported_op_carries_onnx2torch_message(tmp_path: Path) -> None:
    expected = r"onnx2torch cannot convert unsupported\.onnx: .*Frobnicate"
    with pytest.raises(BakeoffError, match=expected) as caught:
        load_onnx(write_unsupported_op_model(tmp_path / "unsupported.onnx"))
    assert "\n" not in str(caught.value)


def test_missing_onnx2torch_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx2torch", None)  # what `import` finds for an absent package
    onnx_import._import_onnx2torch.cache_clear()
    try:
        with pytest.raises(UsageError, match=r"pip install --no-deps onnx2torch==1\.5\.15"):
            load_onnx(Path("any.onnx"))
    finally:
        onnx_import._import_onnx2torch.cache_clear()


def test_detection_op_without_torchvision_says_so(tmp_path: Path) -> None:
    _, has_torchvision = onnx_import._import_onnx2torch()
    if has_torchvision:
        pytest.skip("a working torchvision is installed; the stand-in is not used")
    with pytest.raises(BakeoffError, match=r"detection op \(RoiAlign\).*torchvision"):
        load_onnx(write_roi_align_model(tmp_path / "roi.onnx"))
    assert "torchvision" not in sys.modules  # the stand-in never outlives onnx2torch's import
