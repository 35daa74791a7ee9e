"""A user's own Keras model as the target side of a pair: its weight layers matched, in order and by
shape, to the torch side's canonical weights, then activations and gradients of one step."""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bakeoff.errors import PairError
from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.keras.parity import configure, gradients_by_layer
from bakeoff.frameworks.keras.weights import from_keras, to_keras
from bakeoff.npz import load_arrays, numbered_inputs
from bakeoff.twins.byo import load_object, user_failure

KINDS: dict[type, str] = {
    keras.layers.Dense: "dense",
    keras.layers.Conv2D: "conv2d",
    keras.layers.BatchNormalization: "batch_norm",
    keras.layers.LayerNormalization: "layer_norm",
    keras.layers.Embedding: "embedding",
    keras.layers.LSTM: "lstm",
    keras.layers.GRU: "gru",
    keras.layers.MultiHeadAttention: "attention",
}


def weight_layers(model: keras.Model) -> list[Any]:
    found = []
    for layer in model.layers:
        if type(layer) in KINDS:
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += weight_layers(layer)
        elif layer.weights:
            supported = ", ".join(sorted(k.__name__ for k in KINDS))
            raise PairError(
                f"Keras layer '{layer.name}' ({type(layer).__name__}) has weights bakeoff cannot "
                f"map; supported: {supported}"
            )
    return found


def _match(
    torch_layers: list[dict[str, Any]], layers: list[Any], weights: dict[int, dict[str, np.ndarray]]
) -> list[LayerMap]:
    if len(torch_layers) != len(layers):
        t = ", ".join(f"{d['name']} ({d['class']})" for d in torch_layers)
        k = ", ".join(f"{x.name} ({type(x).__name__})" for x in layers)
        raise PairError(
            f"the torch model has {len(torch_layers)} weight layers [{t}] but the Keras model has "
            f"{len(layers)} [{k}]"
        )
    maps = []
    for index, (desc, layer) in enumerate(zip(torch_layers, layers, strict=True)):
        where = (
            f"layer {index + 1}: torch '{desc['name']}' ({desc['class']}) vs Keras '{layer.name}' "
            f"({type(layer).__name__})"
        )
        if KINDS[type(layer)] != desc["kind"]:
            raise PairError(f"{where}: different kinds of layer ({desc['kind']} vs {KINDS[type(layer)]})")
        heads = getattr(layer, "num_heads", 1)
        flat = tuple(desc["flatten_from"]) if desc["flatten_from"] else None
        m = LayerMap(desc["kind"], flat, heads)
        mapped = [a.shape for a in to_keras(m, weights[index])]
        have = [tuple(v.shape) for v in layer.weights]
        if mapped != have:
            raise PairError(
                f"{where}: torch weights map to shapes {[list(s) for s in mapped]} but Keras holds "
                f"{[list(s) for s in have]}"
            )
        maps.append(m)
    return maps


def _pre_activations(model: keras.Model, layers: list[Any], feed: Any) -> dict[int, np.ndarray]:
    """Each layer's output before its fused activation: torch computes Linear and ReLU as two modules,
    Keras' Dense(activation='relu') as one. Needs a functional or Sequential model."""
    try:
        probe = keras.Model(model.inputs, [layer.input for layer in layers])
    except Exception:  # subclassed models have no graph to probe; outputs and gradients still compare
        return {}
    layer_inputs = probe(feed, training=False)
    out = {}
    for index, (layer, x) in enumerate(zip(layers, layer_inputs, strict=True)):
        fused = getattr(layer, "activation", None)
        if fused is not None:
            layer.activation = keras.activations.linear
        try:
            value = (
                layer(x, x)
                if isinstance(layer, keras.layers.MultiHeadAttention)
                else layer(x, training=False)
            )
        finally:
            if fused is not None:
                layer.activation = fused
        out[index] = np.asarray(value)
    return out


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    meta = configure(request["threads"])
    model = load_object(request["ref"], "--keras")
    if not isinstance(model, keras.Model):
        raise PairError(f"--keras {request['ref']!r} gave a {type(model).__name__}, not a keras.Model")
    inputs = numbered_inputs(load_arrays(request["batch"]))
    feed = inputs[0] if len(inputs) == 1 else inputs
    try:
        model(feed, training=False)  # builds a model that was defined without an input shape
    except Exception as exc:
        shapes = [list(x.shape) for x in inputs]
        raise user_failure(
            "--keras", request["ref"], f"--keras model failed on inputs of shape {shapes}:", exc
        ) from exc
    torch_layers = json.loads(request["torch_layers"])
    weights: dict[int, dict[str, np.ndarray]] = {}
    for key, array in load_arrays(request["torch_weights"]).items():
        _, position, name = key.split("/")
        weights.setdefault(int(position), {})[name] = array
    layers = weight_layers(model)
    maps = _match(torch_layers, layers, weights)
    for layer, m, index in zip(layers, maps, range(len(layers)), strict=True):
        layer.set_weights([np.asarray(a, dtype=np.float32) for a in to_keras(m, weights[index])])

    arrays: dict[str, np.ndarray] = {"output": np.asarray(model(feed, training=False))}
    for index, value in _pre_activations(model, layers, feed).items():
        arrays[f"act/{index}"] = value
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    with tf.GradientTape() as tape:
        output = model(feed, training=True)
        target = np.random.default_rng(request["seed"]).normal(size=tuple(output.shape)).astype(np.float32)
        loss = keras.losses.MeanSquaredError()(target, output)
    grads = gradients_by_layer(model, tape.gradient(loss, model.trainable_variables), layers)
    arrays["loss"] = np.array(float(loss), dtype=np.float64)
    for index, (layer, m) in enumerate(zip(layers, maps, strict=True)):
        for key, grad in from_keras(m, grads[layer.name]).items():
            arrays[f"grad/{index}/{key}"] = grad
    meta.update(
        layers=[{"name": x.name, "class": type(x).__name__} for x in layers],
        params=int(sum(np.prod(v.shape) for v in model.trainable_variables)),
    )
    return arrays, meta
