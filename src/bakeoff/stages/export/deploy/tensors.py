"""Per-sample tensor signatures (no batch axis) that deploy writers put in server configs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bakeoff.errors import UsageError

if TYPE_CHECKING:
    from onnx import ValueInfoProto


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: `dtype` is a numpy dtype name, `shape` excludes the batch axis (-1: any)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


def onnx_specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Read the graph inputs and outputs of an ONNX file, dropping their (dynamic) batch axis."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:
        raise UsageError(
            f"cannot read ONNX model {path}: {exc}; pass a file written by an ONNX exporter"
        ) from exc
    # Old exporters list weights as graph inputs too; servers feed only the real ones.
    weights = {init.name for init in graph.initializer}
    inputs = [_spec(v) for v in graph.input if v.name not in weights]
    return inputs, [_spec(v) for v in graph.output]


def _spec(value: ValueInfoProto) -> TensorSpec:
    from onnx import helper

    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    if not dims or dims[0] != -1:
        raise UsageError(
            f"ONNX tensor {value.name!r} has shape {dims} without a dynamic batch axis: re-export with the "
            "first axis dynamic (torch.onnx dynamic_shapes, tf2onnx input signature with batch None)"
        )
    dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    return TensorSpec(name=value.name, dtype=dtype, shape=tuple(dims[1:]))
