"""Lay out an ONNX file or a SavedModel as a Triton Inference Server model repository entry."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from bakeoff.errors import UsageError
from bakeoff.stages.export.deploy._layout import check_name, staged
from bakeoff.stages.export.deploy.tensors import TensorSpec
from bakeoff.stages.export.deploy.tfserving import check_savedmodel

# Where each platform's backend looks for the model inside the version folder.
MODEL_FILES = {"onnxruntime_onnx": "model.onnx", "tensorflow_savedmodel": "model.savedmodel"}
KINDS = ("KIND_CPU", "KIND_GPU", "KIND_AUTO")
DATA_TYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16",
    "object": "TYPE_STRING",
    "bytes": "TYPE_STRING",
}


def write(
    out: Path,
    name: str,
    *,
    model: Path,
    platform: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    max_batch_size: int = 256,
    preferred_batch_sizes: Sequence[int] = (),
    max_queue_delay_microseconds: int = 100,
    instance_kind: str = "KIND_CPU",
    instance_count: int = 1,
) -> Path:
    """Write out/<name>/config.pbtxt and out/<name>/1/<model file>; return out/<name>."""
    check_name(name)
    _check_model(model, platform)
    _check_batching(max_batch_size, preferred_batch_sizes, max_queue_delay_microseconds)
    _check_instances(instance_kind, instance_count)
    config = config_pbtxt(
        name,
        platform,
        inputs,
        outputs,
        max_batch_size=max_batch_size,
        preferred_batch_sizes=preferred_batch_sizes,
        max_queue_delay_microseconds=max_queue_delay_microseconds,
        instance_kind=instance_kind,
        instance_count=instance_count,
    )
    dest = out / name
    with staged(dest) as scratch:
        (scratch / "1").mkdir()
        _copy_model(model, scratch / "1" / MODEL_FILES[platform])
        (scratch / "config.pbtxt").write_text(config, encoding="utf-8")
    return dest


def config_pbtxt(
    name: str,
    platform: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    max_batch_size: int,
    preferred_batch_sizes: Sequence[int],
    max_queue_delay_microseconds: int,
    instance_kind: str,
    instance_count: int,
) -> str:
    """Triton's ModelConfig in protobuf text format; tensor dims exclude the batch axis Triton adds."""
    if not inputs or not outputs:
        raise UsageError("a Triton model needs at least one input and one output TensorSpec: pass both lists")
    preferred = (
        f"  preferred_batch_size: [ {_ints(preferred_batch_sizes)} ]\n" if preferred_batch_sizes else ""
    )
    return (
        f"name: {_quote(name)}\n"
        f"platform: {_quote(platform)}\n"
        f"max_batch_size: {max_batch_size}\n"
        f"input [\n{_tensors(inputs)}\n]\n"
        f"output [\n{_tensors(outputs)}\n]\n"
        f"dynamic_batching {{\n{preferred}"
        f"  max_queue_delay_microseconds: {max_queue_delay_microseconds}\n}}\n"
        f"instance_group [\n  {{\n    count: {instance_count}\n    kind: {instance_kind}\n  }}\n]\n"
    )


def _tensors(specs: Sequence[TensorSpec]) -> str:
    return ",\n".join(_tensor(spec) for spec in specs)


def _tensor(spec: TensorSpec) -> str:
    if spec.dtype not in DATA_TYPES:
        raise UsageError(
            f"tensor {spec.name!r} has dtype {spec.dtype!r}, which Triton cannot serve: "
            f"use one of {', '.join(DATA_TYPES)}"
        )
    # A per-sample scalar (model shape [batch]) has no dims left; Triton spells it [1] reshaped to [].
    dims = _ints(spec.shape) if spec.shape else "1"
    reshape = "" if spec.shape else "\n    reshape: { shape: [ ] }"
    return (
        f"  {{\n    name: {_quote(spec.name)}\n    data_type: {DATA_TYPES[spec.dtype]}\n"
        f"    dims: [ {dims} ]{reshape}\n  }}"
    )


def _ints(values: Sequence[int]) -> str:
    return ", ".join(str(int(v)) for v in values)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_model(model: Path, platform: str) -> None:
    if platform not in MODEL_FILES:
        raise UsageError(f"platform {platform!r} is not supported: use one of {', '.join(MODEL_FILES)}")
    if platform == "tensorflow_savedmodel":
        check_savedmodel(model)
    elif not model.is_file():
        raise UsageError(f"ONNX model {model} is not a file: pass the .onnx file the ONNX export wrote")


def _check_batching(max_batch_size: int, preferred: Sequence[int], delay: int) -> None:
    # Dims are written without the batch axis, which is only right when Triton batches (max_batch_size > 0).
    if max_batch_size < 1:
        raise UsageError(f"max_batch_size must be at least 1, got {max_batch_size}")
    bad = [size for size in preferred if not 1 <= size <= max_batch_size]
    if bad:
        raise UsageError(f"preferred batch sizes {bad} are outside 1..max_batch_size ({max_batch_size})")
    if delay < 0:
        raise UsageError(f"max_queue_delay_microseconds must be 0 or more, got {delay}")


def _check_instances(kind: str, count: int) -> None:
    if kind not in KINDS:
        raise UsageError(f"instance kind {kind!r} is not supported: use one of {', '.join(KINDS)}")
    if count < 1:
        raise UsageError(f"instance count must be at least 1, got {count}")


def _copy_model(model: Path, dest: Path) -> None:
    if model.is_dir():
        shutil.copytree(model, dest)
    else:
        shutil.copy2(model, dest)
