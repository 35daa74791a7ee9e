"""The runtime registry: names, what each needs, and a runtime whose package is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bakeoff.errors import UsageError
from bakeoff.frameworks import KERAS_BACKENDS
from bakeoff.runtimes import RUNTIMES, LoadOptions, Runtime, check_runtimes, load


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
    gpu_only = {"onnxruntime-cuda", "onnxruntime-tensorrt", "torch-eager-cuda", "torch-compile-cuda"}
    assert {r.name for r in RUNTIMES.values() if r.gpu} == gpu_only
    for runtime in RUNTIMES.values():
        assert runtime.worker in ("torch", "native", *KERAS_BACKENDS)
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


def test_a_gpu_provider_missing_here_is_refused_not_replaced(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    cpu = load(RUNTIMES["onnxruntime"], path, LoadOptions(threads=1))
    np.testing.assert_array_equal(cpu([np.array([[-1.0, 0.0, 2.0]], np.float32)]), [[0.0, 0.0, 2.0]])
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    with pytest.raises(RuntimeError, match="ONNX Runtime here has no CUDAExecutionProvider"):
        load(RUNTIMES["onnxruntime-cuda"], path, LoadOptions(threads=1))
