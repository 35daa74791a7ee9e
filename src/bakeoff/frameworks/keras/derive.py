"""A spec from a user's Keras model: its layers in call order, wired by their inbound nodes, each read
from its config; a Dense or Conv2D activation becomes an activation layer after it, as torch writes it."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from bakeoff.errors import PairError
from bakeoff.frameworks.keras.byo import _activation
from bakeoff.frameworks.keras.parity import configure
from bakeoff.spec.derive import Builder
from bakeoff.twins.byo import collect_pairs, load_object, user_failure

ACTIVATIONS = {"relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh", "sigmoid": "sigmoid"}
ACTIVATIONS |= {"softmax": "softmax"}


def collect(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every model of the request in turn; one that cannot be derived says so in its own entry."""
    meta = configure(request["threads"])
    arrays, models = collect_pairs(request["models"], _derive)
    return arrays, {**meta, **models}


def _derive(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ref = request["ref"]
    model = load_object(ref, "--keras")
    if not isinstance(model, keras.Model):
        raise PairError(f"--keras {ref!r} gave a {type(model).__name__}, not a keras.Model")
    shapes = [tuple(s) for s in request["input_shapes"]]
    if not model.built or not getattr(model, "inputs", None):
        try:  # a Sequential without keras.Input learns its input shape on its first call
            model(*[np.zeros((1, *s), dtype=np.float32) for s in shapes])
        except Exception as exc:
            raise user_failure("--keras", ref, f"--keras model failed on inputs {shapes}:", exc) from exc
    model_inputs = list(model.inputs)
    if len(model_inputs) != len(shapes):
        raise PairError(
            f"--keras {ref!r}: the model takes {len(model_inputs)} input(s) but {len(shapes)} "
            "--input-shape were given"
        )
    b = Builder("--keras", ref)
    names: dict[int, str] = {}
    blocked: set[int] = set()
    for tensor, shape in zip(model_inputs, shapes, strict=True):
        have = tuple(tensor.shape[1:])
        if None not in have and have != shape:
            raise PairError(
                f"--keras {ref!r}: the model takes inputs of shape {list(have)}, not {list(shape)}"
            )
        names[id(tensor)] = b.add_input(_input_name(tensor), shape)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if len(layer._inbound_nodes) != 1:
            b.refuse(type(layer).__name__, layer.name, "called more than once; a spec layer runs once")
            continue
        node = layer._inbound_nodes[0]
        ins = [id(t) for t in node.input_tensors]
        if len(node.output_tensors) != 1:
            b.refuse(type(layer).__name__, layer.name, "several outputs")
            blocked.update(id(t) for t in node.output_tensors)
            continue
        out = node.output_tensors[0]
        if any(i in blocked or i not in names for i in ins):
            if _known(layer) is None:  # listed even behind another unsupported layer
                b.refuse(type(layer).__name__, layer.name)
            blocked.add(id(out))
            continue
        name = _layer(b, layer, [names[i] for i in ins])
        if name is None:
            blocked.add(id(out))
        else:
            names[id(out)] = name
    outputs = list(model.outputs)
    if len(outputs) != 1:
        b.refuse("a model with several outputs", model.name)
        return {}, {"spec": b.finish(request["name"], None, ())}
    output = names.get(id(outputs[0]))
    shape = tuple(int(d) for d in outputs[0].shape[1:] if d is not None)
    return {}, {"spec": b.finish(request["name"], output, shape)}


def _input_name(tensor: Any) -> str:
    name = str(tensor.name)
    return "inputs" if name.startswith("keras_tensor") else name


def _known(layer: Any) -> str | None:
    return KNOWN.get(type(layer).__name__)


KNOWN = {
    "Dense": "dense",
    "Conv2D": "conv2d",
    "MaxPooling2D": "max_pool2d",
    "AveragePooling2D": "avg_pool2d",
    "GlobalAveragePooling2D": "global_avg_pool",
    "GlobalAveragePooling1D": "global_avg_pool",
    "Flatten": "flatten",
    "Dropout": "dropout",
    "BatchNormalization": "batch_norm",
    "LayerNormalization": "layer_norm",
    "Activation": "activation",
    "ReLU": "activation",
    "Softmax": "activation",
    "Embedding": "embedding",
    "LSTM": "lstm",
    "GRU": "gru",
    "Add": "add",
    "Concatenate": "concat",
}


def _fn(b: Builder, layer: Any, fn: Any) -> str | bool | None:
    """The spec's name for an activation function; None for the identity; False (refused) otherwise."""
    op = _activation(fn)
    if op is None:
        return None
    if op["op"] == "gelu":
        return "gelu_tanh" if op.get("approximate") else "gelu"
    if op["op"] in ACTIVATIONS:
        return ACTIVATIONS[op["op"]]
    b.refuse(f"activation {op['op']!r}", layer.name)
    return False


def _layer(b: Builder, layer: Any, ins: list[str]) -> str | None:
    kind = _known(layer)
    cls = type(layer).__name__
    if kind is None:
        b.refuse(cls, layer.name)
        return None
    c = layer.get_config()
    where = layer.name
    if c.get("data_format", "channels_last") != "channels_last":
        b.refuse(cls, where, "data_format channels_first; a spec holds images channels-last")
        return None
    match cls:
        case "Dense" | "Conv2D":
            fn = _fn(b, layer, layer.activation)
            if fn is False:
                return None
            if cls == "Dense":
                fields: dict[str, Any] = {"units": c["units"]}
            else:
                if tuple(c["dilation_rate"]) != (1, 1):
                    b.refuse(cls, where, f"dilation_rate={c['dilation_rate']}")
                    return None
                fields = {
                    "filters": c["filters"],
                    "kernel_size": list(c["kernel_size"]),
                    "strides": list(c["strides"]),
                    "padding": c["padding"],
                    "groups": c.get("groups", 1),
                }
            name = b.add(where, kind, ins, **fields, use_bias=c["use_bias"])
            # torch computes the activation as a call of its own, and parity compares it there.
            return b.add(f"{where}_act", "activation", [name], fn=fn) if fn else name
        case "MaxPooling2D" | "AveragePooling2D":
            return b.add(
                where,
                kind,
                ins,
                pool_size=list(c["pool_size"]),
                strides=list(c["strides"]),
                padding=c["padding"],
            )
        case "GlobalAveragePooling2D" | "GlobalAveragePooling1D":
            if c.get("keepdims"):
                b.refuse(cls, where, "keepdims=True")
                return None
            return b.add(where, kind, ins)
        case "Flatten" | "Add":
            return b.add(where, kind, ins)
        case "Concatenate":
            if c["axis"] != -1:
                b.refuse(cls, where, f"axis={c['axis']}; a spec concatenates the last axis")
                return None
            return b.add(where, kind, ins)
        case "Dropout":
            if c.get("noise_shape") is not None:
                b.refuse(cls, where, "noise_shape")
                return None
            return b.add(where, kind, ins, rate=float(c["rate"]))
        case "BatchNormalization" | "LayerNormalization":
            axis = c["axis"]
            last = axis in (-1, [-1]) or (isinstance(axis, list) and len(axis) == 1 and axis[0] == -1)
            if not last or not (c["center"] and c["scale"]) or c.get("rms_scaling"):
                b.refuse(cls, where, "a spec normalizes the last axis, with center and scale")
                return None
            fields = {"epsilon": float(c["epsilon"])}
            if cls == "BatchNormalization":
                fields["momentum"] = float(c["momentum"])
            return b.add(where, kind, ins, **fields)
        case "Activation":
            fn = _fn(b, layer, layer.activation)
            if fn is False:
                return None
            return b.add(where, kind, ins, fn=fn) if fn else ins[0]
        case "ReLU":
            if c.get("max_value") is not None or c.get("negative_slope") or c.get("threshold"):
                b.refuse(cls, where, "max_value, negative_slope or threshold")
                return None
            return b.add(where, kind, ins, fn="relu")
        case "Softmax":
            if c.get("axis", -1) != -1:
                b.refuse(cls, where, f"axis={c['axis']}")
                return None
            return b.add(where, kind, ins, fn="softmax")
        case "Embedding":
            if c.get("mask_zero"):
                b.refuse(cls, where, "mask_zero=True")
                return None
            return b.add(where, kind, ins, vocab_size=c["input_dim"], dim=c["output_dim"])
        case "LSTM" | "GRU":
            plain = (
                not c.get("return_state")
                and not c.get("go_backwards")
                and c.get("use_bias", True)
                and c.get("activation") == "tanh"
                and c.get("recurrent_activation") == "sigmoid"
                and c.get("reset_after", True)
            )
            if not plain:
                b.refuse(cls, where, "a spec holds tanh/sigmoid layers with biases (GRU reset_after=True)")
                return None
            return b.add(where, kind, ins, units=c["units"], return_sequences=bool(c["return_sequences"]))
    b.refuse(cls, where)  # pragma: no cover
    return None
