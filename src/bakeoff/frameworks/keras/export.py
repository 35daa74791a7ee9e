"""Keras exporters: SavedModel (Model.export), ONNX (Keras' own ONNX export, tf2onnx under it) and
TFLite in fp32, fp16, dynamic-range int8 and full int8, converted from the SavedModel (Keras 3 breaks
`TFLiteConverter.from_keras_model`); recurrent models are unrolled for TFLite."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.parity import configure
from bakeoff.frameworks.keras.weights import load_weights
from bakeoff.measure.isolation import case_loop
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.export.shared import REFERENCE, ExportJob, in_chunks, save_reference, timed_export

# artifact -> the converter settings it is made with: fp32, fp16, drq or int8 (its name's last part)
TFLITE = {a.name: a.name.rsplit("-", 1)[1] for a in ARTIFACTS.values() if a.format == "tflite"}


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    job = ExportJob.from_request(request)
    configure(job.threads)
    model = build(job.graph)
    load_weights(model, job.graph, job.weights)
    savedmodel = path_of(job.root, ARTIFACTS["keras-savedmodel"])

    def saved(path: Path) -> None:
        model.export(str(path), format="tf_saved_model", verbose=False)

    def onnx(path: Path) -> dict[str, Any]:
        model.export(str(path), format="onnx", verbose=False, opset_version=request["opset"])
        _check_onnx(path)
        return {"opset": request["opset"]}

    def tflite(kind: str) -> Any:
        def export(path: Path) -> dict[str, Any]:
            if not (savedmodel / "saved_model.pb").exists():
                raise RuntimeError("needs the keras-savedmodel artifact, which was not made")
            data, extra = _convert(savedmodel, kind, job.inputs("cal"), model)
            path.write_bytes(data)
            return extra

        return export

    def twin_weights(path: Path) -> None:
        shutil.copy(request["weights"], path)  # the trained canonical weights both twins load

    exporters: dict[str, Any] = {"keras-savedmodel": saved, "keras-onnx": onnx, "keras-twin": twin_weights}
    exporters.update({name: tflite(kind) for name, kind in TFLITE.items()})

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if case == REFERENCE:
            outputs = in_chunks(lambda xs: model(xs[0] if len(xs) == 1 else xs).numpy(), job.inputs("val"))
            return {}, save_reference(job, "keras", outputs)
        return {}, timed_export(job.root, case, exporters[case])

    return case_loop(request, run_one)


def _converter(savedmodel: Path, kind: str, samples: list[np.ndarray]) -> Any:
    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel))
    if kind != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if kind == "int8":

        def representative() -> Iterator[list[np.ndarray]]:
            for i in range(len(samples[0])):
                yield [x[i : i + 1] for x in samples]

        converter.representative_dataset = representative
        # Builtin int8 kernels only: a model with an op that has none fails here, loudly, instead of
        # keeping that op in float behind an "int8" label. Inputs and outputs stay float32.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def _convert(
    savedmodel: Path, kind: str, samples: list[np.ndarray], model: keras.Model
) -> tuple[bytes, dict[str, Any]]:
    """From the SavedModel; a recurrent layer's while loop keeps TensorLists that TFLite's builtin ops
    cannot take, so on that error the model is exported again with its recurrent layers unrolled (same
    weights, same function) and converted from that SavedModel."""
    try:
        return _converter(savedmodel, kind, samples).convert(), {}
    except Exception as exc:
        if "TensorList" not in str(exc):
            raise
    with tempfile.TemporaryDirectory(prefix="bakeoff-unrolled-") as tmp:
        _unrolled(model).export(tmp, format="tf_saved_model", verbose=False)
        data = _converter(Path(tmp), kind, samples).convert()
    return data, {
        "note": "recurrent layers unrolled (unroll=True) for TFLite: TF's while-loop tensor lists "
        "do not lower to TFLite builtin ops"
    }


def _unrolled(model: keras.Model) -> keras.Model:
    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if "unroll" in config:
            config["unroll"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _check_onnx(path: Path) -> None:
    """tf2onnx writes TensorFlow ops it cannot convert into the graph as they are, so the file is not
    valid ONNX; say so at export, with the reason, instead of at the first load."""
    import onnx

    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        reason = str(exc).strip().splitlines()[0]
        calls = sorted(n.name for n in model.graph.node if n.op_type.endswith("PartitionedCall"))
        hint = (
            f"; tf2onnx could not inline the TensorFlow function call(s) {', '.join(calls)} (Keras runs "
            "grouped convolutions on CPU as an XLA-compiled function)"
            if calls
            else ""
        )
        raise RuntimeError(f"tf2onnx wrote invalid ONNX: {reason}{hint}") from exc
