"""The catalogue of exported artifacts: what each one is, which worker makes it, which runtime checks it,
and the input layout it takes. Framework-neutral: the parent, every worker and the report read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bakeoff.errors import check_choices


@dataclass(frozen=True)
class Artifact:
    name: str
    producer: str  # the worker that makes it: 'torch', 'keras', or 'native' (neither framework imported)
    origin: str  # the framework whose model it was made from; its layout and reference outputs apply
    format: str  # 'twin', 'keras-twin', 'onnx', 'pt2', 'torchscript', 'savedmodel', 'tflite'
    precision: str  # 'fp32', 'fp16', 'int8 (dynamic range)', ...
    file: str  # file or directory name inside the artifact's folder
    verify_with: str  # the runtime that runs it for verification
    how: str  # what made it, for the report
    source: str = ""  # the artifact it was made from, when that is another artifact (quantization)
    # Cross-framework conversions (bakeoff convert): not in 'all', since onnx2tf needs its own env.
    conversion: bool = False
    # Made only when Keras on other backends is asked for (--backends): not in 'all' either.
    backends: bool = False

    @property
    def fp32(self) -> bool:
        return self.precision == "fp32"


def _onnx_int8(origin: str, kind: str) -> Artifact:
    how = {
        "dynamic": "onnxruntime.quantization.quantize_dynamic (int8 weights, activations quantized "
        "at run time)",
        "static": "onnxruntime.quantization.quantize_static (QDQ, int8 weights and activations calibrated "
        "on training samples)",
    }[kind]
    return Artifact(
        f"{origin}-onnx-int8-{kind}",
        "native",
        origin,
        "onnx",
        f"int8 ({kind})",
        "model.onnx",
        "onnxruntime",
        how,
        source=f"{origin}-onnx",
    )


def _tflite(precision: str, suffix: str, how: str) -> Artifact:
    return Artifact(
        f"keras-tflite-{suffix}",
        "keras",
        "keras",
        "tflite",
        precision,
        "model.tflite",
        "litert",
        f"TFLiteConverter.from_saved_model{how}",
        source="keras-savedmodel",
    )


_ALL = [
    Artifact(
        "torch-twin",
        "torch",
        "torch",
        "twin",
        "fp32",
        "weights.npz",
        "torch-eager",
        "the PyTorch twin itself: spec + trained weights",
    ),
    Artifact(
        "torch-onnx",
        "torch",
        "torch",
        "onnx",
        "fp32",
        "model.onnx",
        "onnxruntime",
        "torch.onnx.export(dynamo=True), dynamic batch",
    ),
    Artifact(
        "torch-pt2",
        "torch",
        "torch",
        "pt2",
        "fp32",
        "model.pt2",
        "exported-program",
        "torch.export.export + torch.export.save, dynamic batch",
    ),
    Artifact(
        "torch-torchscript",
        "torch",
        "torch",
        "torchscript",
        "fp32",
        "model.pt",
        "torchscript",
        "torch.jit.trace + save",
    ),
    Artifact(
        "keras-savedmodel",
        "keras",
        "keras",
        "savedmodel",
        "fp32",
        "saved_model",
        "tf-savedmodel",
        'keras Model.export(format="tf_saved_model"), signature serving_default',
    ),
    Artifact(
        "keras-twin",
        "keras",
        "keras",
        "keras-twin",
        "fp32",
        "weights.npz",
        "keras-tf",
        "the Keras twin itself: spec + trained weights, run by Keras 3 on TensorFlow, PyTorch or JAX",
        backends=True,
    ),
    Artifact(
        "keras-onnx",
        "keras",
        "keras",
        "onnx",
        "fp32",
        "model.onnx",
        "onnxruntime",
        'keras Model.export(format="onnx") (tf2onnx from a tf.function)',
    ),
    _tflite("fp32", "fp32", ""),
    _tflite("fp16", "fp16", " with float16 weights"),
    _tflite("int8 (dynamic range)", "drq", " with Optimize.DEFAULT (int8 weights, float activations)"),
    _tflite(
        "int8 (full)",
        "int8",
        " with a representative data set and TFLITE_BUILTINS_INT8 only (int8 weights and activations, "
        "float32 input and output)",
    ),
    _onnx_int8("torch", "dynamic"),
    _onnx_int8("torch", "static"),
    _onnx_int8("keras", "dynamic"),
    _onnx_int8("keras", "static"),
    Artifact(
        "torch-onnx-tf",
        "onnx2tf",
        "torch",
        "savedmodel",
        "fp32",
        "saved_model",
        "tf-savedmodel",
        "onnx2tf (in its own virtualenv) from torch-onnx: PyTorch -> ONNX -> TensorFlow, input layout kept",
        source="torch-onnx",
        conversion=True,
    ),
    Artifact(
        "keras-onnx-torch",
        "torch",
        "keras",
        "onnx2torch",
        "fp32",
        "model.onnx",
        "onnx2torch",
        "onnx2torch.convert of keras-onnx at load: Keras -> ONNX -> PyTorch, input layout kept (NHWC)",
        source="keras-onnx",
        conversion=True,
    ),
]
ARTIFACTS: dict[str, Artifact] = {a.name: a for a in _ALL}
DEFAULT_ARTIFACTS = tuple(a.name for a in _ALL if not a.conversion and not a.backends)
BACKEND_ARTIFACTS = tuple(a.name for a in _ALL if a.backends)
CONVERSIONS = tuple(a.name for a in _ALL if a.conversion)
# The accuracy an artifact must keep, relative to fp32 (MLPerf's 99% gate).
GATE = 0.99


def check_artifacts(names: list[str]) -> list[str]:
    return check_choices("--artifacts", "artifact", names, ARTIFACTS)


def feed(artifact: Artifact, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Canonical (channels-last) inputs in the layout and dtype the artifact's origin model takes:
    torch models take images NCHW and token ids as int64."""
    if artifact.origin != "torch":
        return inputs
    out = []
    for x in inputs:
        if x.dtype.kind in "iu":
            out.append(x.astype(np.int64))
        elif x.ndim == 4:
            out.append(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        else:
            out.append(x)
    return out


def path_of(root: Path, artifact: Artifact) -> Path:
    return root / artifact.name / artifact.file


def size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
