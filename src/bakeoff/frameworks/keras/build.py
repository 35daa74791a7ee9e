"""Builds a functional keras.Model from a spec graph; images stay NHWC, Keras' default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from bakeoff.errors import SpecError
from bakeoff.frameworks.keras.layers import PositionEmbedding, gelu_tanh
from bakeoff.spec import schema as s
from bakeoff.spec.graph import Graph, Node, pair


def build(graph: Graph, after: Callable[[str, Any], Any] | None = None) -> keras.Model:
    """`after(name, tensor)` may return another tensor to stand for a node's output (the debug stage plants
    its faults and checks there, in a copy)."""
    tensors: dict[str, Any] = {
        i.name: keras.Input(shape=i.shape, dtype=i.dtype, name=i.name) for i in graph.inputs
    }
    for node in graph.nodes:
        layer = build_layer(node)
        args = [tensors[src] for src in node.inputs]
        if node.type in ("add", "concat"):
            tensors[node.name] = layer(args)
        elif node.type == "attention":
            tensors[node.name] = layer(args[0], args[0])
        else:
            tensors[node.name] = layer(args[0])
        if after is not None:
            tensors[node.name] = after(node.name, tensors[node.name])
    inputs = [tensors[i.name] for i in graph.inputs]
    # A single input stays a bare tensor so that callers may pass one array without a structure warning.
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, tensors[graph.output], name=graph.spec.name)


def activation(fn: str | None) -> Any:
    return gelu_tanh if fn == "gelu_tanh" else fn


def build_layer(node: Node) -> keras.layers.Layer:
    layer, name = node.layer, node.name
    match layer:
        case s.Dense():
            return keras.layers.Dense(
                layer.units, activation=activation(layer.activation), use_bias=layer.use_bias, name=name
            )
        case s.Conv2d():
            return keras.layers.Conv2D(
                layer.filters,
                pair(layer.kernel_size),
                strides=pair(layer.strides),
                padding=layer.padding,
                groups=layer.groups,
                use_bias=layer.use_bias,
                activation=activation(layer.activation),
                name=name,
            )
        case s.MaxPool2d() | s.AvgPool2d():
            pool = keras.layers.MaxPooling2D if layer.type == "max_pool2d" else keras.layers.AveragePooling2D
            strides = pair(layer.strides) if layer.strides is not None else None
            return pool(pair(layer.pool_size), strides=strides, padding=layer.padding, name=name)
        case s.GlobalAvgPool():
            pool = (
                keras.layers.GlobalAveragePooling2D
                if len(node.in_shape) == 3
                else (keras.layers.GlobalAveragePooling1D)
            )
            return pool(name=name)
        case s.Flatten():
            return keras.layers.Flatten(name=name)
        case s.Dropout():
            return keras.layers.Dropout(layer.rate, name=name)
        case s.BatchNorm():
            return keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon, name=name)
        case s.LayerNorm():
            return keras.layers.LayerNormalization(epsilon=layer.epsilon, name=name)
        case s.Embedding():
            return keras.layers.Embedding(layer.vocab_size, layer.dim, name=name)
        case s.PositionEmbedding():
            return PositionEmbedding(layer.max_length, name=name)
        case s.LSTM():
            return keras.layers.LSTM(layer.units, return_sequences=layer.return_sequences, name=name)
        case s.GRU():
            # reset_after=True (the default) is the formulation torch.nn.GRU uses.
            return keras.layers.GRU(
                layer.units, return_sequences=layer.return_sequences, reset_after=True, name=name
            )
        case s.Attention():
            return keras.layers.MultiHeadAttention(layer.heads, node.in_shape[-1] // layer.heads, name=name)
        case s.ActivationLayer():
            return keras.layers.Activation(activation(layer.fn), name=name)
        case s.Add():
            return keras.layers.Add(name=name)
        case s.Concat():
            return keras.layers.Concatenate(axis=-1, name=name)
    raise SpecError(f"layer '{name}': type '{layer.type}' has no Keras builder")
