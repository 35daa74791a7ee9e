"""Triton model repository entries, checked against Triton's own ModelConfig schema and a real runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from google.protobuf import text_format
from onnx import TensorProto, helper, numpy_helper
from tritonclient.grpc import model_config_pb2 as mc

from bakeoff.errors import BakeoffError
from bakeoff.stages.export.deploy import TensorSpec, onnx_specs, triton
from tests.stages.export.deploy.conftest import ExportedKeras


def _onnx_model(path: Path, *, batch: str | int = "N") -> Path:
    """y = relu(x @ w + b) and label = argmax(y): a float matrix and a per-sample int64 scalar."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(4, 3)).astype("float32"), "w"),
        numpy_helper.from_array(rng.normal(size=(3,)).astype("float32"), "b"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Relu", ["z"], ["y"]),
        helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, [batch]),
        ],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _parse(config: Path) -> mc.ModelConfig:
    return text_format.Parse(config.read_text(encoding="utf-8"), mc.ModelConfig())


def test_onnx_specs_drop_the_batch_axis(tmp_path: Path) -> None:
    inputs, outputs = onnx_specs(_onnx_model(tmp_path / "m.onnx"))
    assert inputs == [TensorSpec("x", "float32", (4,))]
    assert outputs == [TensorSpec("y", "float32", (3,)), TensorSpec("label", "int64", ())]


def test_onnx_specs_refuse_a_fixed_batch(tmp_path: Path) -> None:
    with pytest.raises(BakeoffError, match="dynamic batch axis"):
        onnx_specs(_onnx_model(tmp_path / "m.onnx", batch=1))


def test_onnx_entry_matches_triton_schema_and_runs(tmp_path: Path) -> None:
    model = _onnx_model(tmp_path / "m.onnx")
    inputs, outputs = onnx_specs(model)
    entry = triton.write(
        tmp_path / "repo",
        "tiny",
        model=model,
        platform="onnxruntime_onnx",
        inputs=inputs,
        outputs=outputs,
        max_batch_size=64,
        preferred_batch_sizes=[8, 32],
    )
    assert entry == tmp_path / "repo" / "tiny"
    config = _parse(entry / "config.pbtxt")
    assert (config.name, config.platform, config.max_batch_size) == ("tiny", "onnxruntime_onnx", 64)
    assert [(t.name, list(t.dims), mc.DataType.Name(t.data_type)) for t in config.input] == [
        ("x", [4], "TYPE_FP32")
    ]
    assert [(t.name, list(t.dims), mc.DataType.Name(t.data_type)) for t in config.output] == [
        ("y", [3], "TYPE_FP32"),
        ("label", [1], "TYPE_INT64"),
    ]
    assert config.output[1].HasField("reshape") and list(config.output[1].reshape.shape) == []
    assert config.HasField("dynamic_batching")
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert [(g.count, mc.ModelInstanceGroup.Kind.Name(g.kind)) for g in config.instance_group] == [
        (1, "KIND_CPU")
    ]
    _answers_a_batch(entry / "1" / "model.onnx", model)


def _answers_a_batch(served: Path, original: Path) -> None:
    batch = np.random.default_rng(1).normal(size=(7, 4)).astype("float32")
    got = ort.InferenceSession(str(served)).run(None, {"x": batch})
    want = ort.InferenceSession(str(original)).run(None, {"x": batch})
    assert got[0].shape == (7, 3) and got[1].shape == (7,)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_kind_and_queue_delay_are_written(tmp_path: Path) -> None:
    model = _onnx_model(tmp_path / "m.onnx")
    inputs, outputs = onnx_specs(model)
    entry = triton.write(
        tmp_path / "repo",
        "tiny",
        model=model,
        platform="onnxruntime_onnx",
        inputs=inputs,
        outputs=outputs,
        max_queue_delay_microseconds=0,
        instance_kind="KIND_GPU",
        instance_count=2,
    )
    config = _parse(entry / "config.pbtxt")
    assert config.max_batch_size == 256 and not config.dynamic_batching.preferred_batch_size
    assert [(g.count, mc.ModelInstanceGroup.Kind.Name(g.kind)) for g in config.instance_group] == [
        (2, "KIND_GPU")
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"platform": "pytorch_libtorch"}, "platform"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"preferred_batch_sizes": [512]}, "preferred batch sizes"),
        ({"instance_kind": "KIND_TPU"}, "instance kind"),
        ({"outputs": [TensorSpec("y", "complex64", (3,))]}, "complex64"),
        ({"model": Path("missing.onnx")}, "not a file"),
    ],
)
def test_refuses_bad_settings(tmp_path: Path, change: dict[str, object], message: str) -> None:
    model = _onnx_model(tmp_path / "m.onnx")
    inputs, outputs = onnx_specs(model)
    settings: dict[str, object] = {
        "model": model,
        "platform": "onnxruntime_onnx",
        "inputs": inputs,
        "outputs": outputs,
    }
    with pytest.raises(BakeoffError, match=message):
        triton.write(tmp_path / "repo", "tiny", **(settings | change))
    assert not (tmp_path / "repo" / "tiny").exists()


def test_refuses_to_overwrite_an_entry(tmp_path: Path) -> None:
    model = _onnx_model(tmp_path / "m.onnx")
    inputs, outputs = onnx_specs(model)
    args = {"model": model, "platform": "onnxruntime_onnx", "inputs": inputs, "outputs": outputs}
    triton.write(tmp_path, "tiny", **args)
    with pytest.raises(BakeoffError, match="already exists"):
        triton.write(tmp_path, "tiny", **args)


@pytest.mark.slow
def test_savedmodel_entry(keras_savedmodel: ExportedKeras, tmp_path: Path) -> None:
    serving = tf.saved_model.load(str(keras_savedmodel.savedmodel)).signatures["serving_default"]
    entry = triton.write(
        tmp_path,
        "dense",
        model=keras_savedmodel.savedmodel,
        platform="tensorflow_savedmodel",
        inputs=_specs(serving.structured_input_signature[1]),
        outputs=_specs(serving.structured_outputs),
    )
    assert (entry / "1" / "model.savedmodel" / "saved_model.pb").is_file()
    config = _parse(entry / "config.pbtxt")
    assert config.platform == "tensorflow_savedmodel"
    assert [(t.name, list(t.dims)) for t in config.input] == [("x", [4])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("output_0", [3])]
    serve = tf.saved_model.load(str(entry / "1" / "model.savedmodel")).signatures["serving_default"]
    answer = serve(x=tf.constant(keras_savedmodel.batch))["output_0"]
    np.testing.assert_allclose(answer.numpy(), keras_savedmodel.expected, atol=1e-5)


def _specs(signature: dict[str, tf.TensorSpec]) -> list[TensorSpec]:
    """What a caller passes for a SavedModel: the serving signature's tensors, minus the batch axis."""
    return [TensorSpec(name, spec.dtype.name, tuple(spec.shape[1:])) for name, spec in signature.items()]
