"""The bad requests every server gets (malformed JSON, wrong shape, wrong dtype, oversized payload, unknown
model) and the statuses it answers with: a finding about the real servers, printed, not a pass/fail."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import requests

Encode = Callable[[np.ndarray], dict]  # a batch -> the JSON document of a good request


def bad_input_statuses(
    url_for: Callable[[str], str], model: str, encode: Encode, x: np.ndarray, headers: dict[str, str]
) -> dict[str, int]:
    good = json.dumps(encode(x)).encode()
    wrong_dtype = json.loads(json.dumps(encode(x)))
    _stringify(wrong_dtype)
    bodies = {
        "malformed_json": (model, good[: len(good) // 2] + b"}{"),
        "wrong_shape": (model, json.dumps(encode(x[:, :-1])).encode()),
        "wrong_dtype": (model, json.dumps(wrong_dtype).encode()),
        "oversized": (model, _oversized(encode, x.shape[1])),
        "unknown_model": ("no-such-model", good),
    }
    statuses = {}
    for kind, (name, body) in bodies.items():
        answer = requests.post(
            url_for(name), data=body, headers={"Content-Type": "application/json", **headers}, timeout=60
        )
        statuses[kind] = answer.status_code
    return statuses


def _oversized(encode: Encode, width: int, rows: int = 5000) -> bytes:
    """A good request of `rows` samples (about 20 MB), built from one encoded row by byte repetition:
    past TorchServe's 6.5 MB and Ray's 16 MB limits, and cheap to make."""
    marker = 0.5
    one = json.dumps(encode(np.full((1, width), marker))).encode()
    row = json.dumps([marker] * width).encode()[1:-1]
    if row in one:  # a nested list: one row in [[...]]
        return one.replace(b"[" + row + b"]", b",".join([b"[" + row + b"]"] * rows)).replace(
            b"[1, ", f"[{rows}, ".encode()
        )
    return one.replace(row, b", ".join([row] * rows)).replace(b"[1, ", f"[{rows}, ".encode())


def _stringify(doc: object) -> None:
    """Numbers -> strings in place (and a KServe datatype -> BYTES): the wrong-dtype request."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "datatype":
                doc[k] = "BYTES"
            elif k != "shape":
                doc[k] = _strings(v)
    elif isinstance(doc, list):
        doc[:] = _strings(doc)


def _strings(value: object) -> object:
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, dict):
        _stringify(value)
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "not-a-number"
    return value
