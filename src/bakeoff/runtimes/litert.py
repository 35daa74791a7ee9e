"""LiteRT (ai_edge_litert, formerly TFLite) interpreter with XNNPACK, resized to each batch size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bakeoff.runtimes import Bindable, Call, LoadOptions, Predict


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
    slots = [(d["index"], np.dtype(d["dtype"])) for d in inputs]
    planned: list[tuple[int, ...]] = [tuple(int(n) for n in d["shape"]) for d in inputs]
    plan = [object()]  # replaced at every re-plan: a bound call sees whether its plan still stands
    set_tensor, invoke, get_tensor = interpreter.set_tensor, interpreter.invoke, interpreter.get_tensor

    def fit(arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The inputs as the interpreter takes them; the graph re-planned only when a shape changes."""
        if len(arrays) != len(slots):
            raise ValueError(f"this LiteRT model takes {len(slots)} input(s), got {len(arrays)}")
        shapes = [a.shape for a in arrays]
        if shapes != planned:
            for d, shape in zip(inputs, shapes, strict=True):
                interpreter.resize_tensor_input(d["index"], shape, strict=False)
            interpreter.allocate_tensors()
            planned[:] = shapes
            plan[0] = object()
        return [a if a.dtype == d else a.astype(d) for a, (_, d) in zip(arrays, slots, strict=True)]

    def run(arrays: list[np.ndarray]) -> np.ndarray:
        for (index, _), a in zip(slots, arrays, strict=True):
            set_tensor(index, a)
        invoke()
        return get_tensor(output)  # a copy already: the interpreter may reuse its buffer

    def predict(arrays: list[np.ndarray]) -> np.ndarray:
        return run(fit(arrays))

    def bind(arrays: list[np.ndarray]) -> Call:
        fitted = fit(arrays)
        mine = plan[0]

        def refit() -> None:
            nonlocal mine
            fit(fitted)  # another binding re-planned the graph since: plan it for these shapes again
            mine = plan[0]

        if len(fitted) != 1:

            def call_many() -> np.ndarray:
                if plan[0] is not mine:
                    refit()
                return run(fitted)

            return call_many
        (index, _), a = slots[0], fitted[0]

        def call() -> np.ndarray:
            if plan[0] is not mine:
                refit()
            set_tensor(index, a)
            invoke()
            return get_tensor(output)

        return call

    return Bindable(predict, bind)
