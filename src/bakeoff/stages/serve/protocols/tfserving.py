"""TF Serving's REST API: `/v1/models/{m}[/versions/{v}|/labels/{l}]:predict` in the row ("instances") and
columnar ("inputs") formats. An Endpoint whose version is 'label:NAME' addresses a version label."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from bakeoff.stages.serve.protocols import CodecError, Request
from bakeoff.stages.serve.servers.base import Endpoint

HEADERS = {"Content-Type": "application/json"}


def model_path(endpoint: Endpoint) -> str:
    version = endpoint.version
    if not version:
        return f"/v1/models/{endpoint.model}"
    if version.startswith("label:"):
        return f"/v1/models/{endpoint.model}/labels/{version.removeprefix('label:')}"
    return f"/v1/models/{endpoint.model}/versions/{version}"


def predict_path(endpoint: Endpoint) -> str:
    return model_path(endpoint) + ":predict"


def _error(status: int, body: bytes) -> CodecError:
    try:
        message = str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        message = body[:300].decode("utf-8", "replace")
    return CodecError(status, message)


def _first(value: Any) -> Any:
    # A multi-output model answers a dict per row (row format) or a dict of columns (columnar).
    if isinstance(value, dict):
        return next(iter(value.values()))
    return value


class RowCodec:
    protocol = "tfserving-rest"
    transport = "http"
    variant = "row"

    def encode(self, endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Request:
        if len(inputs) == 1:
            instances: Any = next(iter(inputs.values())).tolist()
        else:
            columns = {name: a.tolist() for name, a in inputs.items()}
            n = len(next(iter(inputs.values())))
            instances = [{name: col[i] for name, col in columns.items()} for i in range(n)]
        body = json.dumps({"instances": instances}, separators=(",", ":")).encode()
        return Request("POST", predict_path(endpoint), dict(HEADERS), body)

    def decode(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> np.ndarray:
        if not 200 <= status < 300:
            raise _error(status, body)
        try:
            predictions = json.loads(body)["predictions"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError(status, f"unreadable TF Serving response: {exc}") from exc
        if predictions and isinstance(predictions[0], dict):
            key = next(iter(predictions[0]))
            return np.asarray([p[key] for p in predictions])
        return np.asarray(predictions)


class ColumnarCodec(RowCodec):
    variant = "columnar"

    def encode(self, endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Request:
        payload: Any = (
            next(iter(inputs.values())).tolist()
            if len(inputs) == 1
            else {name: a.tolist() for name, a in inputs.items()}
        )
        body = json.dumps({"inputs": payload}, separators=(",", ":")).encode()
        return Request("POST", predict_path(endpoint), dict(HEADERS), body)

    def decode(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> np.ndarray:
        if not 200 <= status < 300:
            raise _error(status, body)
        try:
            return np.asarray(_first(json.loads(body)["outputs"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError(status, f"unreadable TF Serving response: {exc}") from exc


codec = RowCodec()
variants = {"row": codec, "columnar": ColumnarCodec()}
