"""TorchServe handler that answers zeros of the model's output shape without running a model: served in
place of bakeoff's handler (`noop`), it measures the server stack's own ceiling. Copied into a .mar;
imports nothing from bakeoff."""

from __future__ import annotations

import json
import os
from typing import Any

SHAPE_FILE = "bakeoff_noop.json"
_state: dict[str, Any] = {}


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[Any] | None:
    if "shape" not in _state:
        with open(os.path.join(context.system_properties["model_dir"], SHAPE_FILE), encoding="utf-8") as f:
            _state["shape"] = json.load(f)["output_shape"]
    if not data:
        return None
    answers = []
    for request in data:
        body: Any = request.get("data", request.get("body"))
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body.decode("utf-8"))
        rows = len(body["instances"] if isinstance(body, dict) else body)
        answers.append([_zeros(_state["shape"]) for _ in range(rows)])
    return answers


def _zeros(shape: list[int]) -> Any:
    return [_zeros(shape[1:]) for _ in range(shape[0])] if shape else 0.0
