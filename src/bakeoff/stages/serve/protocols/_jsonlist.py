"""Shared by the single-input JSON protocols (TorchServe's REST API, Ray Serve's plain route): the first
input as a nested JSON list in, a nested list (or {key: list}) out, errors as a JSON message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from bakeoff.stages.serve.protocols import CodecError, Request
from bakeoff.stages.serve.servers.base import Endpoint


class JsonListCodec:
    protocol = ""
    transport = "http"
    answer_key: str | None = None  # the key of the response's list, or None for a bare list

    def path(self, endpoint: Endpoint) -> str:
        raise NotImplementedError

    def encode(self, endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Request:
        if not inputs:
            raise CodecError(0, f"{self.protocol} needs one input; none given")
        first = next(iter(inputs.values()))
        headers = {"Content-Type": "application/json", **dict(endpoint.headers)}
        body = json.dumps(first.tolist(), separators=(",", ":")).encode()
        return Request("POST", self.path(endpoint), headers, body)

    def decode(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> np.ndarray:
        if not 200 <= status < 300:
            raise CodecError(status, error_message(body))
        try:
            doc: Any = json.loads(body)
            if self.answer_key is not None:
                doc = doc[self.answer_key]
            return np.asarray(doc, dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError(status, f"unreadable {self.protocol} response: {exc}") from exc


def error_message(body: bytes) -> str:
    """The message of a JSON error body ({"message"} TorchServe, {"error"} others), or the text."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("error") or doc.get("detail") or doc)[:300]
    return text.strip()[:300]
