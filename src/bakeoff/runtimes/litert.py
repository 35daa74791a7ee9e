"""LiteRT (ai_edge_litert, formerly TFLite) interpreter with XNNPACK, resized to each batch size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bakeoff.runtimes import LoadOptions, Predict


def _ordered(details: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Interpreter inputs in spec order: the converter names them serving_default_<input>:0; a single
    input needs no name."""
    by_name = {d["name"]: d for d in details}
    wanted = [by_name.get(f"serving_default_{n}:0") for n in names]
    if len(details) > 1 and not all(wanted):
        raise ValueError(f"TFLite inputs {sorted(by_name)} do not match the model's inputs {names}")
    return [d for d in wanted if d] if len(details) > 1 else details


def load(path: Path, options: LoadOptions) -> Predict:
    interpreter = Interpreter(model_path=str(path), num_threads=options.threads)
    interpreter.allocate_tensors()
    names = [i["name"] for i in (options.spec or {}).get("inputs", [])]
    inputs = _ordered(interpreter.get_input_details(), names)
    output = interpreter.get_output_details()[0]["index"]
    shapes: list[tuple[int, ...]] = [tuple(int(n) for n in d["shape"]) for d in inputs]
    # Bound once, and the common case (inputs already the right shape and dtype) kept to a few checks:
    # at batch 1 a LiteRT call takes ~8 us here, and each extra lookup showed against a plain loop of
    # set_tensor/invoke/get_tensor (benchmarks/agreement.py).
    slots = [(d["index"], np.dtype(d["dtype"])) for d in inputs]
    set_tensor, invoke, get_tensor = interpreter.set_tensor, interpreter.invoke, interpreter.get_tensor

    def resize(arrays: list[np.ndarray]) -> None:
        # Re-plans the graph: only when the batch changes.
        for d, a in zip(inputs, arrays, strict=True):
            interpreter.resize_tensor_input(d["index"], a.shape, strict=False)
        interpreter.allocate_tensors()
        shapes[:] = [a.shape for a in arrays]

    def predict(arrays: list[np.ndarray]) -> np.ndarray:
        if len(arrays) != len(slots) or any(a.shape != s for a, s in zip(arrays, shapes, strict=True)):
            resize(arrays)
        for (index, dtype), a in zip(slots, arrays, strict=True):
            set_tensor(index, a if a.dtype is dtype or a.dtype == dtype else a.astype(dtype))
        invoke()
        return get_tensor(output)  # a copy already: the interpreter may reuse its buffer

    if len(slots) != 1:
        return predict
    (index, dtype), shape = slots[0], shapes

    def predict_one(arrays: list[np.ndarray]) -> np.ndarray:
        a = arrays[0]
        if len(arrays) != 1 or a.shape != shape[0]:
            resize(arrays)
        set_tensor(index, a if a.dtype is dtype or a.dtype == dtype else a.astype(dtype))
        invoke()
        return get_tensor(output)

    return predict_one
