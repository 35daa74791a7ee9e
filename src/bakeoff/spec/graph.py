"""Resolves a ModelSpec into a checked graph: node names, wiring, and per-sample shapes of every node."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bakeoff.errors import SpecError
from bakeoff.spec import schema as s

Shape = tuple[int, ...]

# Layers that keep a flattened image's element order, so a dense layer after them still sees it.
ORDER_KEEPING = ("dropout", "activation", "add")
INT_DTYPES = ("int32", "int64")


@dataclass(frozen=True)
class Node:
    name: str
    layer: s.Layer
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    # Set on a dense layer that reads a flattened [H, W, C] image: its kernel rows are in H, W, C order
    # here and in Keras, but in C, H, W order in PyTorch.
    flatten_from: Shape | None = None
    # Set when this node's output is a flattened [H, W, C] image (flatten and the order-keeping layers
    # after it): PyTorch holds those values in C, H, W order.
    flat_image: Shape | None = None

    @property
    def type(self) -> str:
        return self.layer.type

    @property
    def in_shape(self) -> Shape:
        return self.in_shapes[0]


@dataclass(frozen=True)
class Graph:
    spec: s.ModelSpec
    nodes: tuple[Node, ...]
    output: str
    # For integer inputs: the smallest vocabulary among the embeddings that read them.
    int_ranges: dict[str, int]

    @property
    def inputs(self) -> tuple[s.InputSpec, ...]:
        return self.spec.inputs

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def output_shape(self) -> Shape:
        return self.node(self.output).shape

    @property
    def ends_in_softmax(self) -> bool:
        """The model outputs probabilities, so its cross-entropy must not apply softmax again."""
        layer = self.node(self.output).layer
        return getattr(layer, "fn", None) == "softmax" or getattr(layer, "activation", None) == "softmax"


def pair(value: s.Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one axis: (before, after); the odd pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def window_out(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def build_graph(spec: s.ModelSpec) -> Graph:
    shapes: dict[str, Shape] = {i.name: i.shape for i in spec.inputs}
    dtypes = {i.name: i.dtype for i in spec.inputs}
    origins: dict[str, Shape | None] = {i.name: None for i in spec.inputs}
    int_ranges: dict[str, int] = {}
    nodes: list[Node] = []
    previous = spec.inputs[0].name
    for index, layer in enumerate(spec.layers):
        name = layer.name or f"{layer.type}_{index}"
        if name in shapes:
            raise SpecError(f"layers[{index}]: name '{name}' is used twice")
        inputs = layer.inputs or (previous,)
        for source in inputs:
            if source not in shapes:
                known = ", ".join(shapes) or "none"
                raise SpecError(
                    f"layer '{name}' ({layer.type}) reads '{source}', which is not an input or an "
                    f"earlier layer (known: {known})"
                )
        in_shapes = tuple(shapes[i] for i in inputs)
        _check_arity(name, layer, inputs)
        _check_dtypes(name, layer, inputs, dtypes)
        if isinstance(layer, s.Embedding):
            int_ranges[inputs[0]] = min(layer.vocab_size, int_ranges.get(inputs[0], layer.vocab_size))
        in_origins = [origins[i] for i in inputs]
        flatten_from = _flatten_origin(name, layer, in_origins)
        shape = infer_shape(name, layer, in_shapes)
        if layer.type == "flatten" and len(in_shapes[0]) == 3:
            origins[name] = in_shapes[0]
        else:
            origins[name] = in_origins[0] if layer.type in ORDER_KEEPING else None
        nodes.append(Node(name, layer, tuple(inputs), in_shapes, shape, flatten_from, origins[name]))
        shapes[name] = shape
        dtypes[name] = "float32"
        previous = name
    output = spec.outputs[0] if spec.outputs else previous
    if output not in {n.name for n in nodes}:
        raise SpecError(f"outputs: '{output}' is not a layer of the model")
    read = {source for node in nodes for source in node.inputs}
    for i in spec.inputs:
        if i.name not in read:
            raise SpecError(f"inputs: '{i.name}' is not read by any layer")
    graph = Graph(spec, tuple(nodes), output, int_ranges)
    _check_task(spec, graph.output_shape)
    return graph


def _check_arity(name: str, layer: s.Layer, inputs: tuple[str, ...]) -> None:
    if layer.type in ("add", "concat"):
        if len(inputs) < 2:
            raise SpecError(f"layer '{name}' ({layer.type}) needs at least two inputs, got {list(inputs)}")
    elif len(inputs) != 1:
        raise SpecError(f"layer '{name}' ({layer.type}) takes one input, got {list(inputs)}")


def _check_dtypes(name: str, layer: s.Layer, inputs: tuple[str, ...], dtypes: Mapping[str, str]) -> None:
    is_int = [dtypes.get(i) in INT_DTYPES for i in inputs]
    if layer.type == "embedding" and not all(is_int):
        raise SpecError(f"layer '{name}' (embedding) needs an integer input; '{inputs[0]}' is float32")
    if layer.type != "embedding" and any(is_int):
        raise SpecError(
            f"layer '{name}' ({layer.type}) reads integer input '{inputs[0]}'; only embedding takes integers"
        )


def _flatten_origin(name: str, layer: s.Layer, in_origins: list[Shape | None]) -> Shape | None:
    if not any(in_origins):
        return None
    if layer.type == "dense":
        return in_origins[0]
    if layer.type in ORDER_KEEPING and all(o == in_origins[0] for o in in_origins):
        return None
    raise SpecError(
        f"layer '{name}' ({layer.type}) reads a flattened image; the flatten order differs between "
        "PyTorch (C,H,W) and Keras (H,W,C), so only dense, dropout, activation and add may follow flatten"
    )


def _need_rank(name: str, layer: s.Layer, shape: Shape, ranks: tuple[int, ...], hint: str) -> None:
    if len(shape) not in ranks:
        raise SpecError(
            f"layer '{name}' ({layer.type}) cannot take input of shape {list(shape)}: it needs {hint}"
        )


def infer_shape(name: str, layer: s.Layer, in_shapes: tuple[Shape, ...]) -> Shape:
    shape = in_shapes[0]
    match layer:
        case s.Dense():
            _need_rank(name, layer, shape, (1, 2), "a vector or a sequence; add flatten or global_avg_pool")
            return (*shape[:-1], layer.units)
        case s.Conv2d():
            _need_rank(name, layer, shape, (3,), "an image [height, width, channels]")
            if shape[2] % layer.groups or layer.filters % layer.groups:
                raise SpecError(
                    f"layer '{name}' (conv2d): groups={layer.groups} must divide input channels "
                    f"{shape[2]} and filters {layer.filters}"
                )
            return (*_spatial(name, layer, shape, layer.kernel_size, layer.strides), layer.filters)
        case s.MaxPool2d() | s.AvgPool2d():
            _need_rank(name, layer, shape, (3,), "an image [height, width, channels]")
            strides = layer.strides if layer.strides is not None else layer.pool_size
            return (*_spatial(name, layer, shape, layer.pool_size, strides), shape[2])
        case s.GlobalAvgPool():
            _need_rank(name, layer, shape, (2, 3), "an image or a sequence")
            return (shape[-1],)
        case s.Flatten():
            _need_rank(name, layer, shape, (2, 3), "an image or a sequence")
            return (math.prod(shape),)
        case s.BatchNorm():
            _need_rank(name, layer, shape, (1, 3), "a vector or an image (use layer_norm on sequences)")
            return shape
        case s.LayerNorm():
            _need_rank(name, layer, shape, (1, 2), "a vector or a sequence")
            return shape
        case s.Embedding():
            _need_rank(name, layer, shape, (1,), "integer tokens [steps]")
            return (shape[0], layer.dim)
        case s.PositionEmbedding():
            _need_rank(name, layer, shape, (2,), "a sequence [steps, features]")
            if shape[0] > layer.max_length:
                raise SpecError(
                    f"layer '{name}' (position_embedding): sequence of {shape[0]} steps exceeds "
                    f"max_length {layer.max_length}"
                )
            return shape
        case s.LSTM() | s.GRU():
            _need_rank(name, layer, shape, (2,), "a sequence [steps, features]")
            return (shape[0], layer.units) if layer.return_sequences else (layer.units,)
        case s.Attention():
            _need_rank(name, layer, shape, (2,), "a sequence [steps, features]")
            if shape[1] % layer.heads:
                raise SpecError(
                    f"layer '{name}' (attention): heads={layer.heads} must divide features {shape[1]}"
                )
            return shape
        case s.Dropout() | s.ActivationLayer():
            return shape
        case s.Add():
            if any(other != shape for other in in_shapes):
                raise SpecError(f"layer '{name}' (add): input shapes differ: {[list(x) for x in in_shapes]}")
            return shape
        case s.Concat():
            if any(len(o) != len(shape) or o[:-1] != shape[:-1] for o in in_shapes):
                raise SpecError(
                    f"layer '{name}' (concat): shapes must agree on all but the last axis: "
                    f"{[list(x) for x in in_shapes]}"
                )
            return (*shape[:-1], sum(o[-1] for o in in_shapes))
    raise SpecError(f"layer '{name}': unsupported type '{layer.type}'")  # pragma: no cover


def _spatial(name: str, layer: s.Layer, shape: Shape, kernel: s.Pair, strides: s.Pair) -> tuple[int, int]:
    (kh, kw), (sh, sw) = pair(kernel), pair(strides)
    padding = getattr(layer, "padding", "valid")
    out = (window_out(shape[0], kh, sh, padding), window_out(shape[1], kw, sw, padding))
    if min(out) < 1:
        raise SpecError(
            f"layer '{name}' ({layer.type}): window {kh}x{kw} does not fit input of shape {list(shape)} "
            "with padding 'valid'"
        )
    return out


def _check_task(spec: s.ModelSpec, out: Shape) -> None:
    task = spec.task
    if task.type == "classification" and out != (task.num_classes,):
        raise SpecError(
            f"task: classification with {task.num_classes} classes needs output shape "
            f"[{task.num_classes}], but the model outputs {list(out)}"
        )
    if task.type == "regression" and len(out) != 1:
        raise SpecError(f"task: regression needs a vector output, but the model outputs {list(out)}")
