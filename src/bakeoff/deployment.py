"""`bakeoff export --target`: which verified artifact each server needs, and laying it out for that
server with the writers in bakeoff.deploy (TF Serving, Triton, TorchServe) or as plain files."""

from __future__ import annotations

import shutil
from pathlib import Path

from bakeoff.artifacts import ARTIFACTS, path_of
from bakeoff.deploy import TARGETS, TensorSpec, onnx_specs
from bakeoff.deploy._layout import check_name, refuse_existing
from bakeoff.errors import BakeoffError, UsageError
from bakeoff.spec.graph import Graph

TFLITES = ("keras-tflite-fp32", "keras-tflite-fp16", "keras-tflite-drq", "keras-tflite-int8")
# (target, source framework) -> the artifacts it is made of
NEEDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("tfserving", "keras"): ("keras-savedmodel",),
    ("triton", "torch"): ("torch-onnx",),
    ("triton", "keras"): ("keras-savedmodel",),
    ("torchserve", "torch"): ("torch-torchscript",),
    ("onnx", "torch"): ("torch-onnx",),
    ("onnx", "keras"): ("keras-onnx",),
    ("tflite", "keras"): TFLITES,
}
DEFAULT_SOURCE = {
    "tfserving": "keras",
    "triton": "torch",
    "torchserve": "torch",
    "onnx": "torch",
    "tflite": "keras",
}
ALL_TARGETS = tuple(DEFAULT_SOURCE)


def needs(target: str, source: str | None) -> tuple[str, ...]:
    if target not in DEFAULT_SOURCE:
        raise UsageError(f"--target: '{target}' is not one of {', '.join(ALL_TARGETS)}")
    source = source or DEFAULT_SOURCE[target]
    if (target, source) not in NEEDS:
        can = [s for t, s in NEEDS if t == target]
        raise UsageError(f"--target {target} is made from a {' or '.join(can)} model, not {source} (--from)")
    return NEEDS[(target, source)]


def _io(graph: Graph, source: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """A SavedModel's serving signature takes the spec's input names, channels-last, and answers
    'output_0' (Keras' export names)."""
    inputs = [TensorSpec(i.name, i.dtype, tuple(i.shape)) for i in graph.inputs]
    return inputs, [TensorSpec("output_0", "float32", tuple(graph.output_shape))]


def torch_sample_shape(graph: Graph) -> tuple[int, ...]:
    shape = tuple(graph.inputs[0].shape)
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape  # torch takes images NCHW


def write(graph: Graph, target: str, source: str | None, root: Path, out: Path, name: str) -> list[Path]:
    """Lays out the verified artifacts under `root` for `target` in `out`; returns what it wrote."""
    source = source or DEFAULT_SOURCE[target]
    names = needs(target, source)
    check_name(name)
    paths = {a: path_of(root, ARTIFACTS[a]) for a in names}
    missing = [a for a, p in paths.items() if not p.exists()]
    if missing:
        raise BakeoffError(
            f"--target {target}: the {', '.join(missing)} artifact was not made (see the export table)"
        )
    first = paths[names[0]]
    if target == "tfserving":
        return [TARGETS["tfserving"](first, out, name)]
    if target == "triton":
        if source == "torch":
            inputs, outputs = onnx_specs(first)
            return [
                TARGETS["triton"](
                    out, name, model=first, platform="onnxruntime_onnx", inputs=inputs, outputs=outputs
                )
            ]
        inputs, outputs = _io(graph, source)
        return [
            TARGETS["triton"](
                out, name, model=first, platform="tensorflow_savedmodel", inputs=inputs, outputs=outputs
            )
        ]
    if target == "torchserve":
        return [
            TARGETS["torchserve"](
                out, name, model=first, input_shape=torch_sample_shape(graph), dtype=graph.inputs[0].dtype
            )
        ]
    return _copy_files(paths, out, name)


def _copy_files(paths: dict[str, Path], out: Path, name: str) -> list[Path]:
    """Plain files for ONNX and TFLite: <name>.onnx, or <name>-<precision>.tflite per variant."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for artifact, path in paths.items():
        suffix = "" if len(paths) == 1 else "-" + artifact.rsplit("-", 1)[1]
        dest = out / f"{name}{suffix}{path.suffix}"
        refuse_existing(dest)
        shutil.copy(path, dest)
        written.append(dest)
    return written
