"""The bound fast path (`runtimes.bind`) that inference times: the same answer as the plain call, for
every runtime that has one, and still right when another binding of the same session changed its plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bakeoff.runtimes import RUNTIMES, Bindable, LoadOptions, bind, load

W = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0]], np.float32)  # 3 features in, 2 out


def _rows(n: int) -> list[np.ndarray]:
    return [np.arange(3 * n, dtype=np.float32).reshape(n, 3) / 7 - 1]


def _onnx(tmp_path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(W, "w")],
    )
    path = tmp_path / "matmul.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _tflite(tmp_path: Path) -> Path:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def matmul(x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, tf.constant(W))

    converter = tf.lite.TFLiteConverter.from_concrete_functions([matmul.get_concrete_function()], None)
    path = tmp_path / "matmul.tflite"
    path.write_bytes(converter.convert())
    return path


def _torchscript(tmp_path: Path) -> Path:
    import torch

    linear = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(W.T.copy()))
    path = tmp_path / "linear.pt"
    torch.jit.save(torch.jit.script(linear.eval()), str(path))
    return path


@pytest.mark.parametrize(
    ("runtime", "make"), [("onnxruntime", _onnx), ("litert", _tflite), ("torchscript", _torchscript)]
)
def test_a_bound_call_answers_as_the_plain_call(tmp_path: Path, runtime: str, make: object) -> None:
    predict = load(RUNTIMES[runtime], make(tmp_path), LoadOptions(threads=1))  # type: ignore[operator]
    assert isinstance(predict, Bindable)
    for n in (1, 4):
        expected = _rows(n)[0] @ W
        np.testing.assert_allclose(predict(_rows(n)), expected, rtol=1e-6)
        if runtime == "torchscript":  # the infer job binds inside inference mode, and outside it falls back
            import torch

            np.testing.assert_allclose(bind(predict, _rows(n))(), expected, rtol=1e-6)
            with torch.inference_mode():
                call = bind(predict, _rows(n))
                np.testing.assert_allclose(call(), expected, rtol=1e-6)
        else:
            call = bind(predict, _rows(n))
            np.testing.assert_allclose(call(), expected, rtol=1e-6)
            np.testing.assert_allclose(call(), expected, rtol=1e-6)  # twice: the binding is reusable


def test_a_litert_binding_survives_another_binding_replanning_the_graph(tmp_path: Path) -> None:
    predict = load(RUNTIMES["litert"], _tflite(tmp_path), LoadOptions(threads=1))
    one = bind(predict, _rows(1))
    four = bind(predict, _rows(4))  # resizes the interpreter under `one`
    np.testing.assert_allclose(one(), _rows(1)[0] @ W, rtol=1e-6)
    np.testing.assert_allclose(four(), _rows(4)[0] @ W, rtol=1e-6)
    np.testing.assert_allclose(one(), _rows(1)[0] @ W, rtol=1e-6)  # and back, twice over
    np.testing.assert_allclose(one(), _rows(1)[0] @ W, rtol=1e-6)
    np.testing.assert_allclose(predict([_rows(2)[0].astype(np.float64)]), _rows(2)[0] @ W, rtol=1e-6)
    with pytest.raises(ValueError, match="takes 1 input"):
        predict(_rows(1) * 2)


def test_a_runtime_without_a_bound_path_is_called_as_it_is() -> None:
    def plain(inputs: list[np.ndarray]) -> np.ndarray:
        return inputs[0] * 2

    np.testing.assert_array_equal(bind(plain, [np.ones(2)])(), [2.0, 2.0])
