"""Trainable parameter count and forward FLOPs per sample, computed from the spec alone.

FLOPs count 2 per multiply-accumulate in dense, conv, recurrent and attention layers: the matmul work
a roofline compares against. Elementwise work (activations, norms, pools, adds) is not counted.
"""

from __future__ import annotations

import math
from typing import Any

from bakeoff.spec import schema as s
from bakeoff.spec.graph import Graph, Node, pair


def node_params(node: Node) -> int:
    layer, shape = node.layer, node.in_shape
    match layer:
        case s.Dense():
            return shape[-1] * layer.units + (layer.units if layer.use_bias else 0)
        case s.Conv2d():
            kh, kw = pair(layer.kernel_size)
            bias = layer.filters if layer.use_bias else 0
            return kh * kw * (shape[-1] // layer.groups) * layer.filters + bias
        case s.BatchNorm() | s.LayerNorm():
            return 2 * shape[-1]
        case s.Embedding():
            return layer.vocab_size * layer.dim
        case s.PositionEmbedding():
            return layer.max_length * shape[-1]
        case s.LSTM():
            return 4 * layer.units * (shape[-1] + layer.units + 1)
        case s.GRU():
            return 3 * layer.units * (shape[-1] + layer.units + 2)
        case s.Attention():
            return 4 * shape[-1] * shape[-1] + 4 * shape[-1]
    return 0


def node_flops(node: Node) -> int:
    layer, shape, out = node.layer, node.in_shape, node.shape
    match layer:
        case s.Dense():
            return 2 * math.prod(shape) * layer.units
        case s.Conv2d():
            kh, kw = pair(layer.kernel_size)
            return 2 * math.prod(out) * kh * kw * (shape[-1] // layer.groups)
        case s.LSTM() | s.GRU():
            gates = 4 if layer.type == "lstm" else 3
            return 2 * shape[0] * gates * layer.units * (shape[1] + layer.units)
        case s.Attention():
            steps, dim = shape
            return 2 * 4 * steps * dim * dim + 2 * 2 * steps * steps * dim
    return 0


def count_params(graph: Graph, framework: str = "spec") -> int:
    """Trainable parameters. framework="torch" counts as a plain torch.nn.LSTM does, with two bias
    vectors where Keras keeps one (bakeoff's own torch twin freezes the second, so it counts as Keras)."""
    total = sum(node_params(n) for n in graph.nodes)
    if framework == "torch":
        total += sum(4 * n.layer.units for n in graph.nodes if isinstance(n.layer, s.LSTM))
    return total


def count_flops(graph: Graph) -> int:
    return sum(node_flops(n) for n in graph.nodes)


def describe(graph: Graph) -> dict[str, Any]:
    """The spec, its counts, and each layer's inputs, output shape, parameters and FLOPs (show --json)."""
    return {
        "spec": graph.spec.model_dump(mode="json"),
        "params": count_params(graph),
        "flops_per_sample": count_flops(graph),
        "layers": [
            {
                "name": n.name,
                "type": n.type,
                "inputs": n.inputs,
                "shape": n.shape,
                "params": node_params(n),
                "flops": node_flops(n),
            }
            for n in graph.nodes
        ],
    }
