"""PyTorch eager inference on the twin (spec + trained canonical weights), under inference_mode."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from bakeoff.frameworks.torch.build import build
from bakeoff.frameworks.torch.parity import configure
from bakeoff.frameworks.torch.weights import load_weights
from bakeoff.runtimes import Bindable, Call, LoadOptions, Predict
from bakeoff.spec.graph import build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.twins.canonical import load_weights as load_canonical


def twin(path: Path, options: LoadOptions) -> torch.nn.Module:
    configure(options.threads)
    graph = build_graph(ModelSpec.model_validate(options.spec))
    model = build(graph)
    load_weights(model, graph, load_canonical(path))
    return model.eval()


def wrap(model: torch.nn.Module | object, device: str = "cpu") -> Predict:
    """Host arrays in, host array out; the copies to and from the device are part of every call, and
    the copy back (`.cpu()`) waits for the device's work, so the clock is read after it finished."""
    target = torch.device(device)
    on_cpu = target.type == "cpu"

    def run(inputs: list[np.ndarray]) -> np.ndarray:
        if on_cpu:  # .to() and .cpu() are no-ops here, but each costs a microsecond at batch 1
            return model(*[torch.from_numpy(x) for x in inputs]).numpy()  # type: ignore[operator]
        return model(*[torch.from_numpy(x).to(target) for x in inputs]).cpu().numpy()  # type: ignore[operator]

    def predict(inputs: list[np.ndarray]) -> np.ndarray:
        if torch.is_inference_mode_enabled():  # the infer job holds it, as a plain loop would
            return run(inputs)
        with torch.inference_mode():  # entering it costs ~4 us: a tenth of a small model's call
            return run(inputs)

    def bind(inputs: list[np.ndarray]) -> Call:
        if not torch.is_inference_mode_enabled():
            return partial(predict, inputs)
        # Bound inside the infer job's inference mode, and called there: a plain loop's body.
        if on_cpu and len(inputs) == 1:
            x = inputs[0]
            return lambda: model(torch.from_numpy(x)).numpy()  # type: ignore[operator]
        return partial(run, inputs)

    return Bindable(predict, bind)


def on_device(path: Path, options: LoadOptions) -> tuple[torch.nn.Module, str]:
    """The twin on the registry entry's device ('cpu' unless it says 'cuda')."""
    device = options.settings.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("this torch build sees no CUDA device (a CPU wheel, or no driver)")
    return twin(path, options).to(device), device


def load(path: Path, options: LoadOptions) -> Predict:
    model, device = on_device(path, options)
    return wrap(model, device)
