"""The artifact catalogue, layouts fed to each origin, and the verification verdict."""

from __future__ import annotations

import numpy as np
import pytest

from bakeoff.errors import UsageError
from bakeoff.runtimes import RUNTIMES
from bakeoff.stages.export.artifacts import ARTIFACTS, check_artifacts, feed
from bakeoff.stages.export.verify import judge


def test_every_artifact_is_verified_by_a_runtime_of_its_format() -> None:
    for artifact in ARTIFACTS.values():
        assert artifact.format in RUNTIMES[artifact.verify_with].formats, artifact.name
        assert not artifact.source or artifact.source in ARTIFACTS


def test_torch_artifacts_take_nchw_images_and_int64_tokens() -> None:
    image = np.arange(2 * 4 * 3 * 2, dtype=np.float32).reshape(2, 4, 3, 2)
    tokens = np.ones((2, 5), dtype=np.int32)
    nchw, ids = feed(ARTIFACTS["torch-onnx"], [image, tokens])
    assert nchw.shape == (2, 2, 4, 3) and nchw[1, 1, 2, 0] == image[1, 2, 0, 1]
    assert ids.dtype == np.int64
    same = feed(ARTIFACTS["keras-onnx-int8-static"], [image, tokens])
    assert same[0] is image and same[1] is tokens


def test_unknown_artifact_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="unknown artifact\\(s\\) torch-tflite; available: torch-twin"):
        check_artifacts(["torch-onnx", "torch-tflite"])


def _verification(diff: float, acc: float, ref: float = 0.9) -> dict:
    return {
        "max_abs_diff": diff,
        "output_scale": 5.0,
        "accuracy": acc,
        "reference_accuracy": ref,
        "top1_agreement": 1.0,
    }


def test_fp32_artifact_must_reproduce_its_source() -> None:
    assert judge(ARTIFACTS["torch-onnx"], _verification(1e-6, 0.9))[:2] == ("ok", "pass")
    status, gate, message = judge(ARTIFACTS["torch-onnx"], _verification(0.3, 0.9))
    assert (status, gate) == ("failed", "fail") and message.startswith("WRONG OUTPUTS: max abs diff 3.00e-01")


def test_int8_under_99_percent_of_fp32_is_flagged_not_failed() -> None:
    status, gate, message = judge(ARTIFACTS["keras-tflite-int8"], _verification(2.0, 0.88))
    assert (status, gate) == ("ok", "fail") and "FLAGGED" in message and "97.78% of fp32" in message
    assert judge(ARTIFACTS["keras-tflite-int8"], _verification(2.0, 0.895))[1] == "pass"
