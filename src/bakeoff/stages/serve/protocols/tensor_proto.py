"""numpy <-> tensorflow.TensorProto without TensorFlow's runtime helpers (the protos only): what the TF
Serving gRPC client and bakeoff's TF Serving API server both speak."""

from __future__ import annotations

from typing import Any

import numpy as np

# numpy dtype name -> (DataType enum value, repeated field for values not in tensor_content)
DTYPES: dict[str, tuple[int, str]] = {
    "float32": (1, "float_val"),
    "float64": (2, "double_val"),
    "int32": (3, "int_val"),
    "uint8": (4, "int_val"),
    "int16": (5, "int_val"),
    "int8": (6, "int_val"),
    "int64": (9, "int64_val"),
    "bool": (10, "bool_val"),
    "float16": (19, "half_val"),
    "uint16": (17, "int_val"),
    "uint32": (22, "uint32_val"),
    "uint64": (23, "uint64_val"),
}
BY_ENUM = {enum: (name, fld) for name, (enum, fld) in DTYPES.items()}
DT_NAMES = {1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 9: "DT_INT64", 10: "DT_BOOL"}


class TensorError(ValueError):
    pass


def to_proto(array: np.ndarray, proto: Any) -> Any:
    """Fill `proto` (a TensorProto) with `array`: dtype, shape and the raw little-endian bytes."""
    name = array.dtype.name
    if name not in DTYPES:
        raise TensorError(f"dtype {name} has no TensorProto mapping (known: {', '.join(DTYPES)})")
    proto.dtype = DTYPES[name][0]
    for d in array.shape:
        proto.tensor_shape.dim.add().size = int(d)
    proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return proto


def from_proto(proto: Any) -> np.ndarray:
    """The array a TensorProto holds, from tensor_content or its typed repeated field."""
    if proto.dtype not in BY_ENUM:
        raise TensorError(f"TensorProto dtype {proto.dtype} is not supported (use DT_FLOAT, DT_INT64, ...)")
    name, field = BY_ENUM[proto.dtype]
    shape = [int(d.size) for d in proto.tensor_shape.dim]
    n = int(np.prod(shape)) if shape else 1
    if proto.tensor_content:
        flat = np.frombuffer(proto.tensor_content, dtype=np.dtype(name).newbyteorder("<"))
    else:
        values = list(getattr(proto, field))
        if name == "float16":
            flat = np.asarray(values, dtype=np.uint16).view(np.float16)
        else:
            flat = np.asarray(values, dtype=name)
        if flat.size == 1 and n > 1:
            flat = np.full(n, flat[0], dtype=name)
    if flat.size != n:
        raise TensorError(f"TensorProto holds {flat.size} values for shape {shape} ({n} values)")
    return flat.reshape(shape).astype(name, copy=False)
