"""KServe v2 (Open Inference Protocol) over HTTP: the JSON body and Triton's binary-tensor extension."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from bakeoff.stages.serve.protocols import CodecError, Request
from bakeoff.stages.serve.servers.base import Endpoint

# numpy dtype name <-> KServe v2 datatype
DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
NUMPY = {v: k for k, v in DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"


def datatype(array: np.ndarray) -> str:
    name = array.dtype.name
    if name not in DATATYPES:
        raise CodecError(0, f"dtype {name} has no KServe v2 datatype (known: {', '.join(DATATYPES)})")
    return DATATYPES[name]


def infer_path(endpoint: Endpoint) -> str:
    version = f"/versions/{endpoint.version}" if endpoint.version else ""
    return f"/v2/models/{endpoint.model}{version}/infer"


def _error(status: int, body: bytes) -> CodecError:
    try:
        message = str(json.loads(body).get("error", body[:300].decode("utf-8", "replace")))
    except (ValueError, AttributeError):
        message = body[:300].decode("utf-8", "replace")
    return CodecError(status, message)


def _array(entry: dict[str, Any], raw: bytes | None = None) -> np.ndarray:
    dtype = NUMPY.get(str(entry.get("datatype")))
    if dtype is None:
        raise CodecError(200, f"output datatype {entry.get('datatype')!r} is not a KServe v2 datatype")
    shape = [int(d) for d in entry["shape"]]
    if raw is not None:
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    return np.asarray(entry["data"], dtype=dtype).reshape(shape)


class JsonCodec:
    protocol = "kserve-v2-http"
    transport = "http"
    variant = "json"

    def encode(self, endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Request:
        body = {
            "inputs": [
                {"name": name, "shape": list(a.shape), "datatype": datatype(a), "data": a.ravel().tolist()}
                for name, a in inputs.items()
            ]
        }
        return Request(
            "POST",
            infer_path(endpoint),
            {"Content-Type": "application/json"},
            json.dumps(body, separators=(",", ":")).encode(),
        )

    def decode(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> np.ndarray:
        if not 200 <= status < 300:
            raise _error(status, body)
        header_length = (headers or {}).get(HEADER_LENGTH)
        if header_length is None:
            try:
                outputs = json.loads(body)["outputs"]
                return _array(outputs[0])
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise CodecError(status, f"unreadable KServe v2 response: {exc}") from exc
        n = int(header_length)
        try:
            outputs = json.loads(body[:n])["outputs"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError(status, f"unreadable KServe v2 binary response header: {exc}") from exc
        first = outputs[0]
        size = (first.get("parameters") or {}).get("binary_data_size")
        if size is None:
            return _array(first)
        return _array(first, body[n : n + int(size)])


class BinaryCodec(JsonCodec):
    """The binary-tensor extension: a JSON header, then the raw little-endian tensors, and the outputs
    asked for in binary too."""

    variant = "binary"

    def encode(self, endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Request:
        chunks = [np.ascontiguousarray(a).tobytes() for a in inputs.values()]
        header = {
            "inputs": [
                {
                    "name": name,
                    "shape": list(a.shape),
                    "datatype": datatype(a),
                    "parameters": {"binary_data_size": len(chunk)},
                }
                for (name, a), chunk in zip(inputs.items(), chunks, strict=True)
            ],
            "parameters": {"binary_data_output": True},
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        return Request(
            "POST",
            infer_path(endpoint),
            {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))},
            head + b"".join(chunks),
        )


codec = JsonCodec()
variants = {"json": codec, "binary": BinaryCodec()}
