"""A user's own Keras model as the target side of a pair: its weight layers matched, in order and by
shape, to the torch side's canonical weights, then each layer's input and output, the layers between
them, and gradients of one step."""

from __future__ import annotations

import functools
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
from bakeoff.twins import explain
from bakeoff.twins.byo import collect_pairs, load_object, user_failure

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
# Layers that apply their `activation` to their output, as torch applies a separate module after.
FUSED = (keras.layers.Dense, keras.layers.Conv2D)


def kind(layer: Any) -> str | None:
    if isinstance(layer, keras.layers.Bidirectional):
        return KINDS.get(type(layer.forward_layer))
    return KINDS.get(type(layer))


def all_layers(model: keras.Model) -> list[Any]:
    """Every layer in call order, nested models opened up."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and kind(layer) is None:
            found += all_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def weight_layers(model: keras.Model) -> list[Any]:
    found = []
    for layer in all_layers(model):
        if kind(layer) is not None:
            found.append(layer)
        elif layer.weights:
            supported = ", ".join(sorted([k.__name__ for k in KINDS] + ["Bidirectional"]))
            raise PairError(
                f"Keras layer '{layer.name}' ({type(layer).__name__}) has weights bakeoff cannot "
                f"map; supported: {supported}"
            )
    return found


def _activation(fn: Any) -> dict[str, Any] | None:
    """An activation function as an op description; None for the identity."""
    keywords = {}
    if isinstance(fn, functools.partial):
        fn, keywords = fn.func, fn.keywords
    name = getattr(fn, "__name__", type(fn).__name__)
    if name == "linear":
        return None
    op: dict[str, Any] = {"op": name}
    if name == "gelu":
        op["approximate"] = bool(keywords.get("approximate", False))
    return op


def _op(layer: Any) -> dict[str, Any] | None:
    if isinstance(layer, keras.layers.Activation):
        return _activation(layer.activation)
    if isinstance(layer, keras.layers.Dropout):
        return {"op": "dropout", "p": layer.rate}
    if isinstance(layer, keras.layers.AveragePooling2D):
        return {"op": "avg_pool2d", "padding": layer.padding, "kernel_size": list(layer.pool_size)}
    return {"op": type(layer).__name__}


def settings(layer: Any) -> dict[str, Any]:
    core = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
    match kind(layer):
        case "batch_norm":
            return {"epsilon": layer.epsilon, "momentum": layer.momentum}
        case "layer_norm":
            return {"epsilon": layer.epsilon}
        case "conv2d":
            return {
                "strides": list(layer.strides),
                "padding": layer.padding,
                "kernel": list(layer.kernel_size),
            }
        case "gru" | "lstm":
            out = {
                "activation": getattr(core.activation, "__name__", "?"),
                "recurrent_activation": getattr(core.recurrent_activation, "__name__", "?"),
            }
            if kind(layer) == "gru":
                out["reset_after"] = core.reset_after
            return out
    return {}


def describe(model: keras.Model, layers: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each weight layer's settings and the ops run after it until the next one; and those before
    the first."""
    ordered = all_layers(model)
    positions = [ordered.index(layer) for layer in layers]
    described = []
    for i, (layer, at) in enumerate(zip(layers, positions, strict=True)):
        end = positions[i + 1] if i + 1 < len(layers) else len(ordered)
        fused = _activation(layer.activation) if isinstance(layer, FUSED) else None
        after = [fused] if fused else []
        after += [op for op in map(_op, ordered[at + 1 : end]) if op]
        described.append(
            {
                "name": layer.name,
                "class": type(layer).__name__,
                "kind": kind(layer),
                "bidirectional": isinstance(layer, keras.layers.Bidirectional),
                "settings": settings(layer),
                "after": after,
            }
        )
    before = [op for op in map(_op, ordered[: positions[0]] if positions else ordered) if op]
    return described, before


def _split(canon: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    forward = {k: v for k, v in canon.items() if not k.endswith("_reverse")}
    reverse = {k.removesuffix("_reverse"): v for k, v in canon.items() if k.endswith("_reverse")}
    return forward, reverse


def mapped(m: LayerMap, canon: dict[str, np.ndarray]) -> list[np.ndarray]:
    forward, reverse = _split(canon)
    return to_keras(m, forward) + (to_keras(m, reverse) if reverse else [])


def unmapped(m: LayerMap, values: list[Any], bidirectional: bool) -> dict[str, np.ndarray]:
    if not bidirectional:
        return from_keras(m, values)
    half = len(values) // 2
    reverse = from_keras(m, values[half:])
    return {**from_keras(m, values[:half]), **{f"{k}_reverse": v for k, v in reverse.items()}}


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
        if kind(layer) != desc["kind"]:
            raise PairError(f"{where}: different kinds of layer ({desc['kind']} vs {kind(layer)})")
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        if bidirectional != desc["bidirectional"]:
            raise PairError(
                f"{where}: {'only the torch' if desc['bidirectional'] else 'only the Keras'} layer is "
                "bidirectional (torch: bidirectional=True; Keras: wrap it in keras.layers.Bidirectional)"
            )
        heads = getattr(layer, "num_heads", 1)
        flat = tuple(desc["flatten_from"]) if desc["flatten_from"] else None
        m = LayerMap(desc["kind"], flat, heads)
        shapes = [a.shape for a in mapped(m, weights[index])]
        have = [tuple(v.shape) for v in layer.weights]
        if shapes != have:
            hint = explain.shape_hint(desc["kind"], settings(layer))
            raise PairError(
                f"{where}: torch weights map to shapes {[list(s) for s in shapes]} but Keras holds "
                f"{[list(s) for s in have]}" + (f"; {hint}" if hint else "")
            )
        maps.append(m)
    return maps


def _call(layer: Any, x: Any) -> Any:
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return layer(*x) if isinstance(x, list) else layer(x, x)
    return layer(x, training=False)


def _probe(model: keras.Model, layers: list[Any], feed: Any) -> dict[str, np.ndarray]:
    """Each layer's input, and its output before its fused activation: torch computes Linear and ReLU
    as two modules, Keras' Dense(activation='relu') as one. Needs a functional or Sequential model."""
    try:
        probe = keras.Model(model.inputs, [layer.input for layer in layers])
    except Exception:  # subclassed models have no graph to probe; outputs and gradients still compare
        return {}
    layer_inputs = probe(feed, training=False)
    if len(layers) == 1:
        layer_inputs = [layer_inputs]
    out = {}
    for index, (layer, x) in enumerate(zip(layers, layer_inputs, strict=True)):
        fused = layer.activation if isinstance(layer, FUSED) else None
        if fused is not None:
            layer.activation = keras.activations.linear
        try:
            out[f"act/{index}"] = np.asarray(_call(layer, x))
        finally:
            if fused is not None:
                layer.activation = fused
        first = x[0] if isinstance(x, list) else x
        out[f"in/{index}"] = np.asarray(first)
    return out


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every pair of the request in turn; a pair that fails says so in its own meta entry."""
    meta = configure(request["threads"])
    arrays, pairs = collect_pairs(request["pairs"], lambda pair: _collect_one(pair, request))
    return arrays, {**meta, **pairs}


def _collect_one(
    pair: dict[str, Any], request: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    ref = pair["ref"]
    keras.backend.clear_session()  # layer names as in a process of their own (dense, not dense_5)
    model = load_object(ref, "--keras")
    if not isinstance(model, keras.Model):
        raise PairError(f"--keras {ref!r} gave a {type(model).__name__}, not a keras.Model")
    inputs = numbered_inputs(load_arrays(pair["batch"]))
    feed = inputs[0] if len(inputs) == 1 else inputs
    try:
        model(feed, training=False)  # builds a model that was defined without an input shape
    except Exception as exc:
        shapes = [list(x.shape) for x in inputs]
        raise user_failure("--keras", ref, f"--keras model failed on inputs of shape {shapes}:", exc) from exc
    torch_layers = json.loads(pair["torch_layers"])
    weights: dict[int, dict[str, np.ndarray]] = {}
    for key, array in load_arrays(pair["torch_weights"]).items():
        _, position, name = key.split("/")
        weights.setdefault(int(position), {})[name] = array
    layers = weight_layers(model)
    maps = _match(torch_layers, layers, weights)
    for layer, m, index in zip(layers, maps, range(len(layers)), strict=True):
        layer.set_weights([np.asarray(a, dtype=np.float32) for a in mapped(m, weights[index])])
    described, before = describe(model, layers)
    matched = _match_settings(model, layers, torch_layers, described) if pair.get("match_defaults") else []
    if matched:
        described, before = describe(model, layers)

    try:
        output = np.asarray(model(feed, training=False))
        repeats = bool(np.array_equal(np.asarray(model(feed, training=False)), output))
        arrays: dict[str, np.ndarray] = {"output": output, **_probe(model, layers, feed)}
        for layer in all_layers(model):
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        with tf.GradientTape() as tape:
            result = model(feed, training=True)
            target = (
                np.random.default_rng(request["seed"]).normal(size=tuple(result.shape)).astype(np.float32)
            )
            loss = keras.losses.MeanSquaredError()(target, result)
    except Exception as exc:
        raise user_failure("--keras", ref, "--keras model failed:", exc) from exc
    grads = gradients_by_layer(model, tape.gradient(loss, model.trainable_variables), layers)
    arrays["loss"] = np.array(float(loss), dtype=np.float64)
    for index, (layer, m) in enumerate(zip(layers, maps, strict=True)):
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        for key, grad in unmapped(m, grads[layer.name], bidirectional).items():
            arrays[f"grad/{index}/{key}"] = grad
    return arrays, {
        "layers": described,
        "before_first": before,
        "params": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "inference_repeats": repeats,
        "matched": matched,
    }


def _match_settings(
    model: keras.Model, layers: list[Any], torch_layers: list[dict[str, Any]], described: list[dict[str, Any]]
) -> list[str]:
    """--match-defaults: gives each Keras layer the torch layer's framework-dependent settings (norm
    epsilon and momentum, GELU's approximation), for this check only; returns what it changed."""
    changed = []
    ordered = all_layers(model)
    for index, (t, k, layer) in enumerate(zip(torch_layers, described, layers, strict=True)):
        for setting in explain.setting_differences(t, k):
            if setting.attribute:
                setattr(layer, setting.attribute, setting.torch_as_keras)
                changed.append(f"{t['name']} ↔ {k['name']}: {setting.change}")
        torch_gelu = explain.gelu_of(t["after"])
        keras_gelu = explain.gelu_of(k["after"])
        if torch_gelu is None or keras_gelu is None or torch_gelu == keras_gelu:
            continue
        end = ordered.index(layers[index + 1]) if index + 1 < len(layers) else len(ordered)
        carriers = [layer, *ordered[ordered.index(layer) + 1 : end]]
        for carrier in carriers:
            fn = getattr(carrier, "activation", None)
            if (
                isinstance(carrier, (*FUSED, keras.layers.Activation))
                and (_activation(fn) or {}).get("op") == "gelu"
            ):
                carrier.activation = functools.partial(keras.activations.gelu, approximate=torch_gelu)
                form = "tanh approximation" if torch_gelu else "exact erf form"
                changed.append(f"'{carrier.name}': gelu set to torch's {form} (approximate={torch_gelu})")
    return changed
