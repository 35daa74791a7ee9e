"""Keras side of a parity check: every node's output in inference mode, then loss and gradients of
one training step, all in canonical layout (which is Keras' channels-last already). Backend-neutral:
the same check runs Keras on TensorFlow, PyTorch or JAX (`backend.py` differentiates)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.keras import backend
from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.weights import from_keras, load_weights
from bakeoff.spec.graph import Graph


def configure(threads: int) -> dict[str, Any]:
    """Same threads as every other framework (fairness rule 4), fp32 with TF32 off (rule 5)."""
    return backend.configure(threads)


def loss_fn(loss: str, probabilities: bool) -> keras.losses.Loss:
    if loss == "mse":
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)


def gradients_by_layer(model: keras.Model, grads: list[Any], layers: list[Any]) -> dict[str, list[Any]]:
    """Each layer's gradients in `layer.weights` order, None for weights that are not trained."""
    pairs = zip(model.trainable_variables, grads, strict=True)
    by_path = {v.path: _dense(g) for v, g in pairs if g is not None}
    return {layer.name: [by_path.get(v.path) for v in layer.weights] for layer in layers}


def _dense(grad: Any) -> np.ndarray:
    if isinstance(grad, np.ndarray):
        return grad
    import tensorflow as tf  # a TensorFlow gradient: embeddings' arrive as IndexedSlices

    return np.asarray(tf.convert_to_tensor(grad))


def collect(
    graph: Graph,
    weights: dict[str, dict[str, np.ndarray]],
    inputs: list[np.ndarray],
    target: np.ndarray,
    threads: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    meta = configure(threads)
    model = build(graph)
    load_weights(model, graph, weights)
    probe = keras.Model(model.input, [model.get_layer(n.name).output for n in graph.nodes])
    feed = inputs[0] if len(inputs) == 1 else inputs
    values = probe(feed, training=False)
    if len(graph.nodes) == 1:  # Keras unwraps a one-output list
        values = [values]
    arrays = {f"act/{n.name}": backend.to_numpy(v) for n, v in zip(graph.nodes, values, strict=True)}

    # Dropout draws differ between frameworks; gradients are compared with it off, batch norm still
    # in training mode.
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    loss_object = loss_fn(graph.spec.task.loss_name, graph.ends_in_softmax)
    loss, grads_list = backend.loss_and_gradients(model, loss_object, feed, target)
    grads = gradients_by_layer(model, grads_list, model.layers)
    arrays["loss"] = np.array(loss, dtype=np.float64)
    for node in graph.nodes:
        if node.name in weights:
            for key, grad in from_keras(LayerMap.of(node), grads[node.name]).items():
                arrays[f"grad/{node.name}/{key}"] = grad
    meta["params"] = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    return arrays, meta
