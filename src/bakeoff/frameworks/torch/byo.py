"""A user's own torch module, described in canonical form: its weight layers in registration order,
their canonical weights, activations, and gradients of one step; this is the source side of a pair."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bakeoff.errors import PairError
from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.torch.parity import configure, to_canonical, to_torch_input, without_dropout
from bakeoff.frameworks.torch.weights import from_torch
from bakeoff.npz import load_arrays, numbered_inputs
from bakeoff.twins.byo import load_object, user_failure

KINDS: dict[type[nn.Module], str] = {
    nn.Linear: "dense",
    nn.Conv2d: "conv2d",
    nn.BatchNorm1d: "batch_norm",
    nn.BatchNorm2d: "batch_norm",
    nn.LayerNorm: "layer_norm",
    nn.Embedding: "embedding",
    nn.LSTM: "lstm",
    nn.GRU: "gru",
    nn.MultiheadAttention: "attention",
}


def weight_layers(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Layers with weights, in registration order; a known layer's own children (attention's output
    projection) belong to it."""
    found = []
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        if type(child) in KINDS:
            found.append((full, child))
        elif any(True for _ in child.parameters(recurse=False)):
            supported = ", ".join(sorted({k.__name__ for k in KINDS}))
            raise PairError(
                f"torch layer '{full}' ({type(child).__name__}) has weights bakeoff cannot map; "
                f"supported: {supported}"
            )
        else:
            found += weight_layers(child, f"{full}.")
    return found


def first_tensor(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value


def _flatten_sources(model: nn.Module, inputs: list[torch.Tensor]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs one inference pass with hooks: each weight layer's output, and for each Linear the NCHW
    shape it was flattened from (the last 4-D output before it, if the element counts agree)."""
    layers = dict(weight_layers(model))
    names = {id(m): n for n, m in model.named_modules()}
    outputs: dict[str, Any] = {}
    origins: dict[str, Any] = {}
    last_4d: list[tuple[int, ...] | None] = [None]

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        name = names.get(id(module), "")
        out = first_tensor(output)
        if name in layers:
            outputs[name] = out.detach()
            if isinstance(module, nn.Linear):
                shape = last_4d[0]
                if shape is not None and int(np.prod(shape)) == module.in_features:
                    c, h, w = shape
                    origins[name] = (h, w, c)
                last_4d[0] = None
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            last_4d[0] = tuple(out.shape[1:])

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            outputs["__output__"] = first_tensor(model(*inputs)).detach()
    finally:
        for handle in handles:
            handle.remove()
    return outputs, origins


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    meta = configure(request["threads"])
    model = load_object(request["ref"], "--torch")
    if not isinstance(model, nn.Module):
        raise PairError(f"--torch {request['ref']!r} gave a {type(model).__name__}, not a torch.nn.Module")
    inputs = [to_torch_input(x) for x in numbered_inputs(load_arrays(request["batch"]))]
    model.eval()
    try:
        outputs, origins = _flatten_sources(model, inputs)
    except Exception as exc:
        shapes = [list(x.shape) for x in inputs]
        raise user_failure(
            "--torch", request["ref"], f"--torch model failed on inputs of shape {shapes}:", exc
        ) from exc
    arrays: dict[str, np.ndarray] = {"output": to_canonical(outputs["__output__"])}
    described = []
    layers = weight_layers(model)
    maps = [
        LayerMap(KINDS[type(mod)], origins.get(name), getattr(mod, "num_heads", 1)) for name, mod in layers
    ]
    for index, ((name, module), m) in enumerate(zip(layers, maps, strict=True)):
        # Copies: .numpy() shares memory, and the training step below updates running statistics in place.
        state = {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}
        for key, array in from_torch(m, state).items():
            arrays[f"weight/{index}/{key}"] = array
        if name in outputs:
            arrays[f"act/{index}"] = to_canonical(outputs[name])
        described.append(
            {
                "name": name,
                "class": type(module).__name__,
                "kind": m.kind,
                "flatten_from": m.flatten_from,
                "heads": m.heads,
            }
        )

    model.train()
    without_dropout(model)
    output = first_tensor(model(*inputs))
    target = np.random.default_rng(request["seed"]).normal(size=tuple(output.shape)).astype(np.float32)
    loss = F.mse_loss(output, torch.from_numpy(target))
    loss.backward()
    arrays["loss"] = np.array(loss.item(), dtype=np.float64)
    for index, ((_, module), m) in enumerate(zip(layers, maps, strict=True)):
        grads = {k: p.grad.cpu().numpy() for k, p in module.named_parameters() if p.grad is not None}
        for key, grad in from_torch(m, grads, grad=True).items():
            arrays[f"grad/{index}/{key}"] = grad
    meta.update(layers=described, params=sum(p.numel() for p in model.parameters() if p.requires_grad))
    return arrays, meta
