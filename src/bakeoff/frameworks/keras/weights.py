"""Canonical weights <-> Keras' layout, as the ordered list `layer.weights` holds them.

Canonical is close to Keras' own layout; what differs is GRU's gate order (z, r, h against r, z, n),
GRU's stacked (2, 3H) bias, and attention's per-head kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bakeoff.frameworks import LayerMap
from bakeoff.spec.graph import Graph

Arrays = dict[str, np.ndarray]


def _rzn_to_zrn(a: np.ndarray) -> np.ndarray:
    r, z, n = np.split(a, 3, axis=-1)
    return np.concatenate([z, r, n], axis=-1)


def _zrn_to_rzn(a: np.ndarray) -> np.ndarray:
    z, r, n = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, n], axis=-1)


def _heads(w: np.ndarray, heads: int) -> np.ndarray:
    return w.reshape(w.shape[0], heads, -1)


def to_keras(m: LayerMap, canon: Arrays) -> list[np.ndarray]:
    """Canonical arrays -> the list `layer.set_weights` takes."""
    match m.kind:
        case "dense" | "conv2d":
            return [canon["kernel"], *([canon["bias"]] if "bias" in canon else [])]
        case "batch_norm":
            return [canon["gamma"], canon["beta"], canon["mean"], canon["var"]]
        case "layer_norm":
            return [canon["gamma"], canon["beta"]]
        case "embedding" | "position_embedding":
            return [canon["table"]]
        case "lstm":
            return [canon["kernel"], canon["recurrent"], canon["bias"]]
        case "gru":
            bias = np.stack([canon["bias_input"], canon["bias_recurrent"]])
            return [_rzn_to_zrn(canon["kernel"]), _rzn_to_zrn(canon["recurrent"]), _rzn_to_zrn(bias)]
        case "attention":
            out = []
            for part in "qkv":
                out += [_heads(canon[f"w{part}"], m.heads), canon[f"b{part}"].reshape(m.heads, -1)]
            dim = canon["wo"].shape[1]
            return [*out, canon["wo"].reshape(m.heads, -1, dim), canon["bo"]]
    return []


def from_keras(m: LayerMap, w: list[Any]) -> Arrays:
    """Values (or gradients, None where a weight is not trainable) in `layer.weights` order -> canonical."""
    match m.kind:
        case "dense" | "conv2d":
            return dict(zip(("kernel", "bias"), w, strict=False))
        case "batch_norm":
            return {k: v for k, v in zip(("gamma", "beta", "mean", "var"), w, strict=True) if v is not None}
        case "layer_norm":
            return {"gamma": w[0], "beta": w[1]}
        case "embedding" | "position_embedding":
            return {"table": w[0]}
        case "lstm":
            return {"kernel": w[0], "recurrent": w[1], "bias": w[2]}
        case "gru":
            bias = _zrn_to_rzn(w[2])
            return {
                "kernel": _zrn_to_rzn(w[0]),
                "recurrent": _zrn_to_rzn(w[1]),
                "bias_input": bias[0],
                "bias_recurrent": bias[1],
            }
        case "attention":
            out: Arrays = {}
            for i, part in enumerate("qkv"):
                out[f"w{part}"] = w[2 * i].reshape(w[2 * i].shape[0], -1)
                out[f"b{part}"] = w[2 * i + 1].reshape(-1)
            out["wo"] = w[6].reshape(-1, w[6].shape[-1])
            out["bo"] = w[7]
            return out
    return {}


def load_into(layer: Any, m: LayerMap, canon: Arrays) -> None:
    arrays = to_keras(m, canon)
    have = [tuple(v.shape) for v in layer.weights]
    want = [a.shape for a in arrays]
    if have != want:
        raise ValueError(f"Keras layer '{layer.name}': weight shapes {have} != mapped {want}")
    layer.set_weights([np.asarray(a, dtype=np.float32) for a in arrays])


def load_weights(model: Any, graph: Graph, weights: dict[str, Arrays]) -> None:
    for node in graph.nodes:
        if node.name in weights:
            load_into(model.get_layer(node.name), LayerMap.of(node), weights[node.name])
