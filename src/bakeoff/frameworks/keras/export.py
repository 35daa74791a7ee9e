"""Keras exporters: SavedModel (Model.export), ONNX (Keras' own ONNX export, tf2onnx under it) and
TFLite in fp32, fp16, dynamic-range int8 and full int8, converted from the SavedModel (Keras 3 breaks
`TFLiteConverter.from_keras_model`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from bakeoff.artifacts import ARTIFACTS, path_of
from bakeoff.exporting import REFERENCE, ExportJob, in_chunks, save_reference, timed_export
from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.parity import configure
from bakeoff.frameworks.keras.weights import load_weights
from bakeoff.measure.isolation import case_loop

TFLITE = {
    "keras-tflite-fp32": "fp32",
    "keras-tflite-fp16": "fp16",
    "keras-tflite-drq": "drq",
    "keras-tflite-int8": "int8",
}
REPRESENTATIVE_SAMPLES = 100


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
        return {"opset": request["opset"]}

    def tflite(kind: str) -> Any:
        def export(path: Path) -> dict[str, Any]:
            if not (savedmodel / "saved_model.pb").exists():
                raise RuntimeError("needs the keras-savedmodel artifact, which was not made")
            data, extra = _convert(savedmodel, kind, job.inputs("cal", n=REPRESENTATIVE_SAMPLES))
            path.write_bytes(data)
            return extra

        return export

    exporters: dict[str, Any] = {"keras-savedmodel": saved, "keras-onnx": onnx}
    exporters.update({name: tflite(kind) for name, kind in TFLITE.items()})

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if case == REFERENCE:
            outputs = in_chunks(lambda xs: model(xs[0] if len(xs) == 1 else xs).numpy(), job.inputs("val"))
            return {}, save_reference(job, "keras", outputs)
        return {}, timed_export(job, case, exporters[case])

    return case_loop(request, run_one)


def _converter(savedmodel: Path, kind: str, samples: list[np.ndarray], batch: int | None) -> Any:
    if batch is None:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel))
    else:
        loaded = tf.saved_model.load(str(savedmodel))
        specs = [tf.TensorSpec([batch, *x.shape[1:]], x.dtype) for x in samples]
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [loaded.serve.get_concrete_function(*specs)], loaded
        )
    if kind != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if kind == "int8":

        def representative() -> Iterator[list[np.ndarray]]:
            for i in range(len(samples[0])):
                yield [x[i : i + 1] for x in samples]

        converter.representative_dataset = representative
    return converter


def _convert(savedmodel: Path, kind: str, samples: list[np.ndarray]) -> tuple[bytes, dict[str, Any]]:
    """A dynamic batch first; recurrent layers' tensor lists only lower to TFLite ops with a static
    shape, so on that error the model is converted again for batch 1 (LiteRT resizes it per call)."""
    try:
        return _converter(savedmodel, kind, samples, None).convert(), {"batch": "dynamic"}
    except Exception as exc:
        if "static" not in str(exc):
            raise
    return _converter(savedmodel, kind, samples, 1).convert(), {
        "batch": "fixed at 1 (the dynamic-batch conversion needs static tensor-list shapes)"
    }
