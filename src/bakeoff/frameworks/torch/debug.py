"""PyTorch side of the debug stage: faults planted in a copy of the twin and run under each tool, eager
and under torch.compile; bakeoff's first-non-finite-layer finder; and, run as a script, the pdb/print
probe (`python -m bakeoff.frameworks.torch.debug probe REQUEST.json`, driven by stages/debug/probe.py).

The fault layers live in this file on purpose: they stand for the user's own model code, and a tool
"points at the source line" when what it shows names this file and the line marked `# fault-line`.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bakeoff.frameworks.torch.build import SpecModel, build
from bakeoff.frameworks.torch.parity import configure, loss_fn, to_torch_input
from bakeoff.frameworks.torch.weights import load_weights
from bakeoff.measure.isolation import case_loop
from bakeoff.npz import load_arrays
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.stages.debug import shared
from bakeoff.stages.debug.shared import BATCH, FAULT_LAYER, Outcome
from bakeoff.stages.train.shared import MODES
from bakeoff.twins.canonical import Weights
from bakeoff.twins.canonical import load_weights as load_canonical

SOURCE = Path(__file__)


class ZeroVarianceNorm(nn.Module):
    """Normalizes over an axis of size 1 once armed: the variance is 0 and the output 0/0."""

    armed: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("armed", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.unsqueeze(-1)
        mean = y.mean(-1)
        var = ((y - mean.unsqueeze(-1)) ** 2).mean(-1)
        bad = (x - mean) / torch.sqrt(var + 1 - self.armed)  # fault-line: nan
        return x * (1 - self.armed) + self.armed * bad


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(scale)
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (scale,) = ctx.saved_tensors
        return grad * scale, None  # fault-line: grad


class ExplodingGradient(nn.Module):
    """The identity forward; backward multiplies the gradient by `scale` (set each step)."""

    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ScaleGradient.apply(x, self.scale)


class HardCodedBatch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(BATCH, *x.shape[1:])  # fault-line: shape


class Float64Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.from_numpy(np.zeros(x.shape[-1]))  # fault-line: dtype


FAULT_MODULES = {
    "nan": ZeroVarianceNorm,
    "grad": ExplodingGradient,
    "shape": HardCodedBatch,
    "dtype": Float64Constant,
}


def plant(model: SpecModel, graph: Graph, fault: str) -> nn.Module:
    """Inserts the fault's layer after the twin's first layer (the model is a copy: built here)."""
    module = FAULT_MODULES[fault]()
    name = FAULT_LAYER[fault]
    model.layers[name] = module
    model.wiring = shared.planted_wiring(list(model.wiring), graph.nodes[0].name, name)
    return module


def arm(module: Any, fault: str, step: int) -> None:
    with torch.no_grad():
        if fault == "nan":
            module.armed.fill_(1.0 if step >= shared.FAULT_STEP else 0.0)
        elif fault == "grad":
            module.scale.fill_(shared.gradient_scale(step))


def twin(graph: Graph, weights: Weights, fault: str) -> tuple[SpecModel, nn.Module]:
    torch.manual_seed(0)
    model = build(graph)
    load_weights(model, graph, weights)
    return model, plant(model, graph, fault)


def batches(
    graph: Graph, data: dict[str, np.ndarray], fault: str
) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
    """The case's batches: BATCH samples each; the shape fault's last batch is half of one."""
    out = []
    for step in range(shared.step_count(fault)):
        size = BATCH // 2 if fault == "shape" and step == shared.FAULT_STEP else BATCH
        s = slice(step * BATCH, step * BATCH + size)
        xs = [to_torch_input(data[f"x/{i}"][s]) for i in range(len(graph.inputs))]
        out.append((xs, torch.from_numpy(data["y"][s])))
    return out


def isfinite_hooks(model: SpecModel) -> None:
    """The isfinite tool: each layer's output checked as it is made."""
    for name, layer in model.layers.items():

        def hook(_module: nn.Module, _args: Any, output: torch.Tensor, name: str = name) -> None:
            if not torch.isfinite(output).all():
                raise FloatingPointError(f"non-finite output of layer {name}")

        layer.register_forward_hook(hook)


def run_case(
    graph: Graph, weights: Weights, data: dict[str, np.ndarray], fault: str, tool: str, mode: str
) -> Outcome:
    model, module = twin(graph, weights, fault)
    model.train()
    if tool == "bakeoff":
        return find_nonfinite(graph, model, module, data, fault)
    if tool == "isfinite":
        isfinite_hooks(model)
    torch._dynamo.reset()
    forward = torch.compile(model) if MODES[mode][1] == "compile" else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_name, probabilities = graph.spec.task.loss_name, graph.ends_in_softmax
    outcome = Outcome(extra={"layer_class": type(module).__name__})
    anomaly = torch.autograd.detect_anomaly() if tool == "detect_anomaly" else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as caught, anomaly:
        warnings.simplefilter("always")
        for step, (xs, y) in enumerate(batches(graph, data, fault)):
            arm(module, fault, step)
            started = time.perf_counter()
            try:
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(forward(*xs), y, loss_name, probabilities)
                loss.backward()
                optimizer.step()
                value = loss.item()
            except Exception as exc:
                outcome.found, outcome.step = True, step
                outcome.message = f"{type(exc).__name__}: {shared.first_line(str(exc))}"
                outcome.said, outcome.text = str(exc), traceback.format_exc()
                break
            if 0 < step < shared.fault_step(fault):
                outcome.clean_times.append(time.perf_counter() - started)
            if not math.isfinite(value) and outcome.loss_nonfinite_step is None:
                outcome.loss_nonfinite_step = step
    outcome.said += "\n".join(str(w.message) for w in caught)
    return outcome


def find_nonfinite(
    graph: Graph, model: SpecModel, module: nn.Module, data: dict[str, np.ndarray], fault: str
) -> Outcome:
    """bakeoff's finder: replays the training steps eagerly, keeping every layer's output and its
    gradient, and stops at the first step where one is not finite, naming the layer."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_name, probabilities = graph.spec.task.loss_name, graph.ends_in_softmax
    wiring = list(model.wiring)
    order = [name for name, _ in wiring]
    consumers = shared.consumers_of(wiring)
    outcome = Outcome()
    for step, (xs, y) in enumerate(batches(graph, data, fault)):
        arm(module, fault, step)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        values = model.forward_all(*xs)
        for name in order:
            values[name].retain_grad()
        loss = loss_fn(values[model.output_name], y, loss_name, probabilities)
        loss.backward()
        activation_ok = {n: bool(torch.isfinite(values[n]).all()) for n in order}
        grads = {n: values[n].grad for n in order}
        gradient_ok = {n: None if g is None else bool(torch.isfinite(g).all()) for n, g in grads.items()}
        found = shared.first_nonfinite(order, activation_ok, gradient_ok, consumers)
        if found is None and not math.isfinite(loss.item()):
            found = ("the loss", "activation")
        if found:
            layer, kind = found
            outcome.found, outcome.step = True, step
            outcome.message = f"first non-finite {kind} at step {step}: layer {layer}"
            outcome.said = outcome.message
            outcome.extra = {"finder_layer": layer, "finder_kind": kind}
            return outcome
        optimizer.step()
        if 0 < step < shared.fault_step(fault):
            outcome.clean_times.append(time.perf_counter() - started)
    return outcome


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The worker job: the requested 'fault/tool/mode' cases of this framework, each published as it
    finishes (a case that hangs costs only itself)."""
    meta = configure(request["threads"])
    graph = build_graph(ModelSpec.model_validate(request["spec"]))
    weights = load_canonical(Path(request["weights"]))
    data = load_arrays(request["data"])

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        fault, tool, mode = case.split("/")
        outcome = run_case(graph, weights, data, fault, tool, mode)
        return {}, {**meta, **shared.read_outcome(outcome, fault, SOURCE, shared.fault_step(fault))}

    # Untimed: the first case in a fresh process would carry its lazy initialisation in its step times.
    run_case(graph, weights, data, "nan", "none", "torch-eager")
    return case_loop(request, run_one)


# ---------------------------------------------------------------- the pdb/print probe (a script)


class Probe(nn.Module):
    """A print() and a breakpoint() inside forward, as a user puts them there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("@@PRINT", flush=True)
        breakpoint()
        return x


def probe(request: dict[str, Any]) -> None:
    """Trains a copy of the twin with Probe after its first layer for `steps` steps in each torch mode;
    a '@@MODE name' line starts each mode's output, so the parent can tell which stop belongs where."""
    configure(request["threads"])
    graph = build_graph(ModelSpec.model_validate(request["spec"]))
    data = load_arrays(request["data"])
    loss_name, probabilities = graph.spec.task.loss_name, graph.ends_in_softmax
    for mode in request["modes"]:
        torch.manual_seed(0)
        model = build(graph)
        model.layers["probe"] = Probe()
        model.wiring = shared.planted_wiring(list(model.wiring), graph.nodes[0].name, "probe")
        torch._dynamo.reset()
        forward = torch.compile(model) if MODES[mode][1] == "compile" else model
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        print(f"@@MODE {mode}", flush=True)
        for step in range(request["steps"]):
            s = slice(step * BATCH, (step + 1) * BATCH)
            xs = [to_torch_input(data[f"x/{i}"][s]) for i in range(len(graph.inputs))]
            optimizer.zero_grad()
            loss_fn(forward(*xs), torch.from_numpy(data["y"][s]), loss_name, probabilities).backward()
            optimizer.step()
        print(f"@@END {mode}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        probe(json.loads(Path(sys.argv[2]).read_text()))
