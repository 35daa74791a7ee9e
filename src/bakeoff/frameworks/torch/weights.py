"""Canonical weights <-> PyTorch's layout: (out, in) linear weights, OIHW convs, CHW flatten order,
two LSTM biases, one fused attention in-projection."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.torch.build import SpecModel
from bakeoff.spec.graph import Graph

Arrays = dict[str, np.ndarray]


def _hwc_rows_to_chw(kernel: np.ndarray, hwc: tuple[int, ...]) -> np.ndarray:
    h, w, c = hwc
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)


def _chw_rows_to_hwc(kernel: np.ndarray, hwc: tuple[int, ...]) -> np.ndarray:
    h, w, c = hwc
    return kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)


def to_torch(m: LayerMap, canon: Arrays) -> Arrays:
    """Canonical arrays -> the layer's torch state_dict entries (names relative to its core module)."""
    out: Arrays = {}
    match m.kind:
        case "dense":
            kernel = canon["kernel"]
            if m.flatten_from:
                kernel = _hwc_rows_to_chw(kernel, m.flatten_from)
            out["weight"] = kernel.T
        case "conv2d":
            out["weight"] = canon["kernel"].transpose(3, 2, 0, 1)
        case "batch_norm":
            out.update(
                weight=canon["gamma"],
                bias=canon["beta"],
                running_mean=canon["mean"],
                running_var=canon["var"],
            )
        case "layer_norm":
            out.update(weight=canon["gamma"], bias=canon["beta"])
        case "embedding" | "position_embedding":
            out["weight"] = canon["table"]
        case "lstm":
            # torch adds two bias vectors; carry the canonical one in the first and zero the second.
            out.update(
                weight_ih_l0=canon["kernel"].T,
                weight_hh_l0=canon["recurrent"].T,
                bias_ih_l0=canon["bias"],
                bias_hh_l0=np.zeros_like(canon["bias"]),
            )
        case "gru":
            out.update(
                weight_ih_l0=canon["kernel"].T,
                weight_hh_l0=canon["recurrent"].T,
                bias_ih_l0=canon["bias_input"],
                bias_hh_l0=canon["bias_recurrent"],
            )
        case "attention":
            out["in_proj_weight"] = np.concatenate([canon["wq"].T, canon["wk"].T, canon["wv"].T])
            out["in_proj_bias"] = np.concatenate([canon["bq"], canon["bk"], canon["bv"]])
            out["out_proj.weight"] = canon["wo"].T
            out["out_proj.bias"] = canon["bo"]
    if m.kind in ("dense", "conv2d") and "bias" in canon:
        out["bias"] = canon["bias"]
    return out


def from_torch(m: LayerMap, t: Arrays, grad: bool = False) -> Arrays:
    """Torch values (or gradients, `grad=True`) of a layer's core module -> canonical arrays."""
    out: Arrays = {}
    match m.kind:
        case "dense":
            kernel = t["weight"].T
            out["kernel"] = _chw_rows_to_hwc(kernel, m.flatten_from) if m.flatten_from else kernel
        case "conv2d":
            out["kernel"] = t["weight"].transpose(2, 3, 1, 0)
        case "batch_norm" | "layer_norm":
            out.update(gamma=t["weight"], beta=t["bias"])
            if not grad and "running_mean" in t:
                out.update(mean=t["running_mean"], var=t["running_var"])
        case "embedding" | "position_embedding":
            out["table"] = t["weight"]
        case "lstm":
            # The canonical bias is b_ih + b_hh; its gradient equals either one's.
            bias = t["bias_ih_l0"] if grad else t["bias_ih_l0"] + t["bias_hh_l0"]
            out.update(kernel=t["weight_ih_l0"].T, recurrent=t["weight_hh_l0"].T, bias=bias)
        case "gru":
            out.update(
                kernel=t["weight_ih_l0"].T,
                recurrent=t["weight_hh_l0"].T,
                bias_input=t["bias_ih_l0"],
                bias_recurrent=t["bias_hh_l0"],
            )
        case "attention":
            wq, wk, wv = np.split(t["in_proj_weight"], 3)
            bq, bk, bv = np.split(t["in_proj_bias"], 3)
            out.update(
                wq=wq.T,
                wk=wk.T,
                wv=wv.T,
                bq=bq,
                bk=bk,
                bv=bv,
                wo=t["out_proj.weight"].T,
                bo=t["out_proj.bias"],
            )
    if m.kind in ("dense", "conv2d") and "bias" in t:
        out["bias"] = t["bias"]
    return out


def core_module(module: nn.Module) -> nn.Module:
    """The submodule that owns a layer's weights (a Conv2d behind its padding, the LSTM in a wrapper)."""
    for sub in module.modules():
        if any(True for _ in sub.parameters(recurse=False)):
            return sub
    return module


def load_into(module: nn.Module, m: LayerMap, canon: Arrays) -> None:
    core = core_module(module)
    state = core.state_dict()
    for name, array in to_torch(m, canon).items():
        if name not in state:
            raise KeyError(f"{type(core).__name__} has no tensor '{name}'")
        if tuple(state[name].shape) != array.shape:
            raise ValueError(
                f"{type(core).__name__}.{name}: shape {tuple(state[name].shape)} != {array.shape}"
            )
        state[name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    core.load_state_dict(state)


def read_from(module: nn.Module, m: LayerMap, grad: bool = False) -> Arrays:
    core = core_module(module)
    if grad:
        tensors = {n: p.grad for n, p in core.named_parameters() if p.grad is not None}
    else:
        tensors = dict(core.state_dict())
    # Copies, so later in-place updates (optimizer steps, running statistics) cannot change what was read.
    return from_torch(m, {n: t.detach().cpu().numpy().copy() for n, t in tensors.items()}, grad)


def load_weights(model: SpecModel, graph: Graph, weights: dict[str, Arrays]) -> None:
    for node in graph.nodes:
        if node.name in weights:
            load_into(model.layers[node.name], LayerMap.of(node), weights[node.name])
