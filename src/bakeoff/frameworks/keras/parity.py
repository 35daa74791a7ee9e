"""Keras side of a parity check: every node's output in inference mode, then loss and gradients of
one training step, all in canonical layout (which is Keras' channels-last already)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.weights import from_keras, load_weights
from bakeoff.spec.graph import Graph


def configure(threads: int) -> dict[str, Any]:
    """Same threads as every other framework (fairness rule 4), fp32 with TF32 off (rule 5)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # only settable before TensorFlow initialises; keep what is set
        pass
    tf.config.experimental.enable_tensor_float_32_execution(False)
    keras.utils.set_random_seed(0)
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tf32": False,
    }


def loss_fn(loss: str, probabilities: bool) -> keras.losses.Loss:
    if loss == "mse":
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)


def gradients_by_layer(model: keras.Model, grads: list[Any], layers: list[Any]) -> dict[str, list[Any]]:
    """Each layer's gradients in `layer.weights` order, None for weights that are not trained."""
    # Embedding gradients arrive as IndexedSlices; densify them to compare element by element.
    by_path = {
        v.path: np.asarray(tf.convert_to_tensor(g))
        for v, g in zip(model.trainable_variables, grads, strict=True)
        if g is not None
    }
    return {layer.name: [by_path.get(v.path) for v in layer.weights] for layer in layers}


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
    arrays = {f"act/{n.name}": np.asarray(v) for n, v in zip(graph.nodes, values, strict=True)}

    # Dropout draws differ between frameworks; gradients are compared with it off, batch norm still
    # in training mode.
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    loss_object = loss_fn(graph.spec.task.loss_name, graph.ends_in_softmax)
    with tf.GradientTape() as tape:
        output = model(feed, training=True)
        loss = loss_object(target, output)
    grads = gradients_by_layer(model, tape.gradient(loss, model.trainable_variables), model.layers)
    arrays["loss"] = np.array(float(loss), dtype=np.float64)
    for node in graph.nodes:
        if node.name in weights:
            for key, grad in from_keras(LayerMap.of(node), grads[node.name]).items():
                arrays[f"grad/{node.name}/{key}"] = grad
    meta["params"] = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    return arrays, meta
