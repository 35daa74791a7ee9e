"""A user's own torch module, described in canonical form: its weight layers in registration order,
their canonical weights and settings, each layer's input and output, the functions run between them,
and gradients of one step; this is the source side of a pair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from bakeoff.errors import PairError
from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.torch.parity import configure, to_canonical, to_torch_input, without_dropout
from bakeoff.frameworks.torch.weights import from_torch
from bakeoff.npz import load_arrays, numbered_inputs
from bakeoff.twins.byo import collect_pairs, load_object, user_failure

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

# Functions run between weight layers that can make two ports differ; their arguments are recorded.
WATCHED = {
    "relu",
    "gelu",
    "silu",
    "tanh",
    "sigmoid",
    "softmax",
    "elu",
    "leaky_relu",
    "dropout",
    "dropout1d",
    "dropout2d",
    "alpha_dropout",
    "avg_pool2d",
    "max_pool2d",
    "adaptive_avg_pool2d",
}
# Builtins arrive with positional arguments only; these are the ones bakeoff reads.
POSITIONAL = {"avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")}


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


@dataclass
class Entry:
    """One layer as Keras holds it: a torch RNN of several layers is several Keras layers, and its
    reverse direction belongs to the same Keras `Bidirectional` layer as its forward one."""

    name: str
    module_name: str
    module: nn.Module
    kind: str
    rnn_layer: int | None = None  # which of a torch RNN's stacked layers
    last_of_module: bool = True  # the module's output is this entry's output

    @property
    def bidirectional(self) -> bool:
        return bool(getattr(self.module, "bidirectional", False))

    def arrays(
        self, tensors: dict[str, np.ndarray], m: LayerMap, grad: bool = False
    ) -> dict[str, np.ndarray]:
        if self.rnn_layer is None:
            return from_torch(m, tensors, grad)
        k = self.rnn_layer
        out = from_torch(m, _renamed(tensors, f"_l{k}"), grad)
        if self.bidirectional:
            reverse = from_torch(m, _renamed(tensors, f"_l{k}_reverse"), grad)
            out.update({f"{key}_reverse": v for key, v in reverse.items()})
        return out


def _renamed(tensors: dict[str, np.ndarray], suffix: str) -> dict[str, np.ndarray]:
    """One direction of one stacked layer, named as the first layer's (`weight_ih_l0`)."""
    return {n.removesuffix(suffix) + "_l0": v for n, v in tensors.items() if n.endswith(suffix)}


def entries(model: nn.Module) -> list[Entry]:
    found = []
    for name, module in weight_layers(model):
        kind = KINDS[type(module)]
        if not isinstance(module, nn.RNNBase):
            found.append(Entry(name, name, module, kind))
            continue
        if module.proj_size or not module.bias:
            raise PairError(
                f"torch layer '{name}' ({type(module).__name__}): bakeoff maps recurrent layers with "
                "biases and without proj_size, as Keras has them"
            )
        layers = module.num_layers
        for k in range(layers):
            label = f"{name}[{k}]" if layers > 1 else name
            found.append(Entry(label, name, module, kind, k, k == layers - 1))
    return found


def settings(entry: Entry) -> dict[str, Any]:
    """The settings that make two ports of a layer compute differently although their weights agree."""
    m = entry.module
    match entry.kind:
        case "batch_norm":
            return {"eps": m.eps, "momentum": m.momentum}
        case "layer_norm":
            return {"eps": m.eps}
        case "conv2d":
            return {"stride": list(m.stride), "padding": m.padding, "kernel": list(m.kernel_size)}  # type: ignore[arg-type]
        case "lstm" | "gru" | "attention":
            return {"batch_first": getattr(m, "batch_first", False), "bidirectional": entry.bidirectional}
    return {}


def _op(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"op": name}
    named = dict(zip(POSITIONAL.get(name, ()), args[1:], strict=False)) | kwargs
    for key in ("approximate", "training", "p", "padding", "count_include_pad", "kernel_size", "stride"):
        value = named.get(key)
        if isinstance(value, str | bool | int | float | tuple | list):
            op[key] = list(value) if isinstance(value, tuple) else value
    return op


class _Trace(TorchFunctionMode):
    """Records, in one forward pass, each weight layer's input and output, the watched functions run
    between weight layers, and the last image-shaped (4-D) value made before each Linear."""

    def __init__(self, layers: dict[int, str]) -> None:
        super().__init__()
        self.layers = layers
        self.depth = 0
        self.after: dict[str, list[dict[str, Any]]] = {}
        self.current = ""  # the last weight layer that finished
        self.last_4d: tuple[int, ...] | None = None
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self.flat_from: dict[str, tuple[int, ...]] = {}
        self.in_hw: dict[str, list[int]] = {}

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if self.depth == 0 and name in WATCHED:
            self.after.setdefault(self.current, []).append(_op(name, args, kwargs))
        value = first_tensor(out)
        if isinstance(value, torch.Tensor) and value.dim() == 4:
            self.last_4d = tuple(value.shape[1:])
        return out

    def before(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        name = self.layers[id(module)]
        x = args[0] if args else next(iter(kwargs.values()))
        self.depth += 1
        self.inputs[name] = x.detach()
        if x.dim() == 4:
            self.in_hw[name] = list(x.shape[2:])
        if isinstance(module, nn.Linear) and x.dim() == 2 and self.last_4d is not None:
            c, h, w = self.last_4d
            if c * h * w == module.in_features:
                self.flat_from[name] = (h, w, c)

    def finished(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        self.depth -= 1
        self.current = self.layers[id(module)]
        self.outputs[self.current] = first_tensor(output).detach()
        self.after.setdefault(self.current, [])


def first_tensor(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def _traced_pass(model: nn.Module, inputs: list[torch.Tensor]) -> tuple[_Trace, torch.Tensor]:
    modules = dict(weight_layers(model))
    trace = _Trace({id(m): n for n, m in modules.items()})
    handles = []
    for module in modules.values():
        handles.append(module.register_forward_pre_hook(trace.before, with_kwargs=True))
        handles.append(module.register_forward_hook(trace.finished, with_kwargs=True))
    try:
        with torch.no_grad(), trace:
            output = first_tensor(model(*inputs)).detach()
    finally:
        for handle in handles:
            handle.remove()
    return trace, output


def _token_inputs(model: nn.Module, inputs: list[np.ndarray], seed: int) -> tuple[list[np.ndarray], str]:
    """A model whose first layer embeds its input takes token ids: draw them inside its vocabulary."""
    name, embedding = (weight_layers(model) or [("", model)])[0]
    if not isinstance(embedding, nn.Embedding) or inputs[0].dtype.kind in "iu":
        return inputs, ""
    vocab = embedding.num_embeddings
    tokens = np.random.default_rng(seed + 2).integers(0, vocab, inputs[0].shape).astype(np.int32)
    note = f"input 1 is token ids in [0, {vocab}), since the torch model's first layer '{name}' embeds it"
    return [tokens, *inputs[1:]], note


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every pair of the request in turn; a pair that fails says so in its own meta entry."""
    meta = configure(request["threads"])
    arrays, pairs = collect_pairs(request["pairs"], lambda pair: _collect_one(pair, request["seed"]))
    return arrays, {**meta, **pairs}


def _collect_one(pair: dict[str, Any], seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    ref = pair["ref"]
    model = load_object(ref, "--torch")
    if not isinstance(model, nn.Module):
        raise PairError(f"--torch {ref!r} gave a {type(model).__name__}, not a torch.nn.Module")
    batch, note = _token_inputs(model, numbered_inputs(load_arrays(pair["batch"])), seed)
    inputs = [to_torch_input(x) for x in batch]
    model.eval()
    try:
        trace, output = _traced_pass(model, inputs)
        with torch.no_grad():
            repeats = bool(torch.equal(first_tensor(model(*inputs)), output))
    except Exception as exc:
        shapes = [list(x.shape) for x in inputs]
        raise user_failure("--torch", ref, f"--torch model failed on inputs of shape {shapes}:", exc) from exc
    arrays: dict[str, np.ndarray] = {"output": to_canonical(output)}
    arrays.update({f"input/{i:02d}": x for i, x in enumerate(batch)})
    described = []
    layers = entries(model)
    maps = [
        LayerMap(e.kind, trace.flat_from.get(e.module_name), getattr(e.module, "num_heads", 1))
        for e in layers
    ]
    for index, (entry, m) in enumerate(zip(layers, maps, strict=True)):
        # Copies: .numpy() shares memory, and the training step below updates running statistics in place.
        state = {k: v.detach().cpu().numpy().copy() for k, v in entry.module.state_dict().items()}
        for key, array in entry.arrays(state, m).items():
            arrays[f"weight/{index}/{key}"] = array
        module_name = entry.module_name
        if entry.last_of_module and module_name in trace.outputs:
            arrays[f"act/{index}"] = to_canonical(trace.outputs[module_name])
        if entry.rnn_layer in (None, 0) and module_name in trace.inputs:
            arrays[f"in/{index}"] = to_canonical(trace.inputs[module_name], m.flatten_from)
        described.append(
            {
                "name": entry.name,
                "class": type(entry.module).__name__,
                "kind": m.kind,
                "flatten_from": m.flatten_from,
                "heads": m.heads,
                "bidirectional": entry.bidirectional,
                "settings": {**settings(entry), "in_hw": trace.in_hw.get(module_name)},
                "after": trace.after.get(module_name, []) if entry.last_of_module else [],
            }
        )

    try:
        model.train()
        without_dropout(model)
        output = first_tensor(model(*inputs))
        target = np.random.default_rng(seed).normal(size=tuple(output.shape)).astype(np.float32)
        loss = F.mse_loss(output, torch.from_numpy(target))
        loss.backward()
    except Exception as exc:
        raise user_failure("--torch", ref, "--torch model failed in training mode:", exc) from exc
    arrays["loss"] = np.array(loss.item(), dtype=np.float64)
    for index, (entry, m) in enumerate(zip(layers, maps, strict=True)):
        grads = {k: p.grad.cpu().numpy() for k, p in entry.module.named_parameters() if p.grad is not None}
        for key, grad in entry.arrays(grads, m, grad=True).items():
            arrays[f"grad/{index}/{key}"] = grad
    return arrays, {
        "layers": described,
        "before_first": trace.after.get("", []),
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "inference_repeats": repeats,
        "note": note,
    }
