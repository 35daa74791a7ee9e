"""LiteRT (ai_edge_litert, formerly TFLite) interpreter with XNNPACK, resized to each batch size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bakeoff.runtimes import LoadOptions, Predict


def _ordered(details: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Interpreter inputs in spec order: matched by name where the converter kept it, else as listed."""
    by_name = [next((d for d in details if n and n in d["name"]), None) for n in names]
    return by_name if all(by_name) and len(set(map(id, by_name))) == len(details) else details  # type: ignore[return-value]


def load(path: Path, options: LoadOptions) -> Predict:
    interpreter = Interpreter(model_path=str(path), num_threads=options.threads)
    interpreter.allocate_tensors()
    names = [i["name"] for i in (options.spec or {}).get("inputs", [])]
    inputs = _ordered(interpreter.get_input_details(), names)
    output = interpreter.get_output_details()[0]["index"]
    shapes: list[tuple[int, ...]] = [tuple(d["shape"]) for d in inputs]

    def predict(arrays: list[np.ndarray]) -> np.ndarray:
        if [a.shape for a in arrays] != shapes:  # resizing re-plans the graph: only when the batch changes
            for d, a in zip(inputs, arrays, strict=True):
                interpreter.resize_tensor_input(d["index"], a.shape, strict=False)
            interpreter.allocate_tensors()
            shapes[:] = [a.shape for a in arrays]
        for d, a in zip(inputs, arrays, strict=True):
            interpreter.set_tensor(d["index"], a.astype(d["dtype"], copy=False))
        interpreter.invoke()
        return interpreter.get_tensor(output).copy()

    return predict
