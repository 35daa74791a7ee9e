"""The runtime registry: names, what each needs, and a runtime whose package is missing."""

from __future__ import annotations

import pytest

from bakeoff.errors import UsageError
from bakeoff.runtimes import RUNTIMES, Runtime, check_runtimes


@pytest.mark.slow  # imports torch, TensorFlow, ONNX Runtime and LiteRT
def test_registry_covers_the_issue_runtimes() -> None:
    expected = {
        "torch-eager",
        "torch-compile",
        "exported-program",
        "tf-savedmodel",
        "tf-xla",
        "onnxruntime",
        "litert",
    }
    assert expected <= set(RUNTIMES)
    assert {r.name for r in RUNTIMES.values() if r.gpu} == {"onnxruntime-cuda", "onnxruntime-tensorrt"}
    for runtime in RUNTIMES.values():
        assert runtime.worker in ("torch", "keras", "native")
        assert runtime.missing() == "", runtime.name  # every package is installed here
        assert callable(runtime.load_module().load)


def test_a_missing_package_is_one_line_naming_the_install() -> None:
    runtime = Runtime(
        "openvino",
        "native",
        ("onnx",),
        "onnxruntime",
        "OpenVINO",
        needs="openvino_not_here",
        install="openvino",
    )
    assert runtime.missing() == "openvino_not_here is not installed (pip install openvino)"


def test_unknown_runtime_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="unknown runtime\\(s\\) tensorrt; available: torch-eager"):
        check_runtimes(["tensorrt"])
