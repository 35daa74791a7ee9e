"""The canonical weight set both twins load: numpy arrays in one framework-neutral layout, by seed.

Canonical layouts (each framework's weights module maps to and from these):

| layer              | arrays                                                                   |
|--------------------|--------------------------------------------------------------------------|
| dense              | kernel (in, out), bias (out)                                             |
| conv2d             | kernel (kh, kw, in/groups, out) i.e. HWIO, bias (out)                    |
| batch_norm         | gamma, beta, mean, var (channels)                                        |
| layer_norm         | gamma, beta (features)                                                   |
| embedding          | table (vocab, dim)                                                       |
| position_embedding | table (max_length, features)                                             |
| lstm               | kernel (in, 4H), recurrent (H, 4H), bias (4H); gates i, f, g, o           |
| gru                | kernel (in, 3H), recurrent (H, 3H), bias_input, bias_recurrent (3H); r, z, n |
| attention          | wq wk wv wo (E, E) applied as x @ w, bq bk bv bo (E)                     |

A dense layer after a flattened image keeps its kernel rows in H, W, C order (channels-last).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bakeoff.npz import load_arrays, save_arrays
from bakeoff.spec import schema as s
from bakeoff.spec.graph import Graph, Node, pair

Weights = dict[str, dict[str, np.ndarray]]


def canonical_weights(graph: Graph, seed: int = 0) -> Weights:
    """Glorot-uniform kernels and small non-zero biases and statistics, so a mapping that drops or
    misplaces any of them shows up in parity."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for node in graph.nodes:
        arrays = _init_node(node, rng)
        if arrays:
            weights[node.name] = {k: v.astype(np.float32) for k, v in arrays.items()}
    return weights


def _glorot(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def _small(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-0.1, 0.1, n)


def _init_node(node: Node, rng: np.random.Generator) -> dict[str, np.ndarray]:
    layer, features = node.layer, node.in_shape[-1]
    out: dict[str, np.ndarray] = {}
    match layer:
        case s.Dense():
            out["kernel"] = _glorot(rng, (features, layer.units), features, layer.units)
            if layer.use_bias:
                out["bias"] = _small(rng, layer.units)
        case s.Conv2d():
            kh, kw = pair(layer.kernel_size)
            cin, filters = features // layer.groups, layer.filters
            out["kernel"] = _glorot(rng, (kh, kw, cin, filters), kh * kw * cin, kh * kw * filters)
            if layer.use_bias:
                out["bias"] = _small(rng, filters)
        case s.BatchNorm():
            out["gamma"] = rng.uniform(0.5, 1.5, features)
            out["beta"] = _small(rng, features)
            out["mean"] = rng.normal(0.0, 0.1, features)
            out["var"] = rng.uniform(0.5, 1.5, features)
        case s.LayerNorm():
            out["gamma"] = rng.uniform(0.8, 1.2, features)
            out["beta"] = _small(rng, features)
        case s.Embedding():
            out["table"] = rng.normal(0.0, 0.5, (layer.vocab_size, layer.dim))
        case s.PositionEmbedding():
            out["table"] = rng.normal(0.0, 0.1, (layer.max_length, features))
        case s.LSTM() | s.GRU():
            width = (4 if layer.type == "lstm" else 3) * layer.units
            out["kernel"] = _glorot(rng, (features, width), features, width)
            out["recurrent"] = _glorot(rng, (layer.units, width), layer.units, width)
            if layer.type == "lstm":
                out["bias"] = _small(rng, width)
            else:
                out["bias_input"] = _small(rng, width)
                out["bias_recurrent"] = _small(rng, width)
        case s.Attention():
            for part in "qkvo":
                out[f"w{part}"] = _glorot(rng, (features, features), features, features)
                out[f"b{part}"] = _small(rng, features)
    return out


def save_weights(weights: Weights, path: Path) -> None:
    save_arrays(
        path, {f"{node}/{key}": arr for node, arrays in weights.items() for key, arr in arrays.items()}
    )


def load_weights(path: Path) -> Weights:
    weights: Weights = {}
    for flat, array in load_arrays(path).items():
        node, key = flat.rsplit("/", 1)
        weights.setdefault(node, {})[key] = array
    return weights
