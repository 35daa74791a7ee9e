"""`bakeoff export --target`: which verified artifact each server needs, and laying it out for that
server with the writers in bakeoff.stages.export.deploy (TF Serving, Triton, TorchServe) or as plain files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bakeoff.errors import BakeoffError, UsageError
from bakeoff.results.store import check_writable
from bakeoff.spec.graph import Graph
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.export.deploy import TARGETS, TensorSpec, onnx_specs
from bakeoff.stages.export.deploy._layout import check_name, refuse_existing
from bakeoff.stages.export.stage import artifacts_root

TFLITES = tuple(a.name for a in ARTIFACTS.values() if a.format == "tflite")
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


def check(
    graph: Graph | None, target: str, source: str | None, out: Path, name: str, inputs: int | None = None
) -> tuple[str, ...]:
    """Everything that can be known before exporting: a mistake costs no training or export time. Without
    the graph (your own model's is derived in the run), `inputs` says how many the model takes."""
    names = needs(target, source)
    check_name(name)
    count = len(graph.inputs) if graph is not None else inputs or 1
    if target == "torchserve" and count > 1:
        named = f" ({', '.join(i.name for i in graph.inputs)})" if graph is not None else ""
        raise UsageError(
            f"--target torchserve: bakeoff's handler feeds one input tensor; this model has {count}{named}"
        )
    taken = [out / name] if target in ("tfserving", "triton") else [out / f"{name}.mar"]
    if target in ("onnx", "tflite"):
        taken = list(_file_names(names, out, name).values())
    for path in taken:
        refuse_existing(path)
    check_writable(out, "--to")
    return names


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
    names = check(graph, target, source, out, name)
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


def write_from_run(
    graph: Graph,
    target: str,
    source: str | None,
    run_dir: Path,
    records: list[dict[str, Any]],
    out: Path,
    name: str,
) -> list[Path]:
    """After the export stage of `run_dir` (its newest `records`): refuses, writing nothing, when an
    artifact the target needs failed to export or verify; else lays the verified ones out (`write`)."""
    needed = needs(target, source)
    bad = [r for r in records if r["case"] in needed and r["status"] != "ok"]
    if bad:
        raise BakeoffError(f"{bad[0]['case']}: {bad[0]['message']}")
    return write(graph, target, source, artifacts_root(run_dir), out, name)


def under_gate(records: list[dict[str, Any]], target: str, source: str | None) -> list[dict[str, Any]]:
    """The records of the artifacts the target needs that fell under the 99% accuracy gate."""
    needed = needs(target, source)
    return [r for r in records if r["case"] in needed and r["metrics"].get("gate") == "fail"]


def _file_names(names: tuple[str, ...], out: Path, name: str) -> dict[str, Path]:
    """Plain files for ONNX and TFLite: <name>.onnx, or <name>-<variant>.tflite per TFLite variant."""
    return {
        a: out
        / f"{name}{'' if len(names) == 1 else '-' + a.rsplit('-', 1)[1]}{Path(ARTIFACTS[a].file).suffix}"
        for a in names
    }


def _copy_files(paths: dict[str, Path], out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for artifact, dest in _file_names(tuple(paths), out, name).items():
        refuse_existing(dest)
        shutil.copy(paths[artifact], dest)
        written.append(dest)
    return written
