"""Builds a torch.nn.Module from a spec graph; image tensors are NCHW inside, as torch code expects."""

from __future__ import annotations

import torch
from torch import nn

from bakeoff.errors import SpecError
from bakeoff.frameworks.torch import layers as L
from bakeoff.spec import schema as s
from bakeoff.spec.graph import Graph, Node, pair, same_padding


class SpecModel(nn.Module):
    """Runs the spec's nodes in order; `forward_all` also returns every node's output."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.input_names = [i.name for i in graph.inputs]
        self.wiring = [(n.name, n.inputs) for n in graph.nodes]
        self.output_name = graph.output
        self.layers = nn.ModuleDict()
        for node in graph.nodes:
            if hasattr(self.layers, node.name):
                raise SpecError(f"layer name '{node.name}' clashes with a torch.nn.ModuleDict attribute")
            self.layers[node.name] = build_layer(node)

    def forward_all(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        values = dict(zip(self.input_names, inputs, strict=True))
        for name, sources in self.wiring:
            values[name] = self.layers[name](*(values[src] for src in sources))
        return values

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.forward_all(*inputs)[self.output_name]


def build(graph: Graph) -> SpecModel:
    return SpecModel(graph)


def activation(fn: str, image: bool) -> nn.Module:
    match fn:
        case "relu":
            return nn.ReLU()
        case "gelu":
            return nn.GELU()
        case "gelu_tanh":
            return nn.GELU(approximate="tanh")
        case "silu":
            return nn.SiLU()
        case "tanh":
            return nn.Tanh()
        case "sigmoid":
            return nn.Sigmoid()
        case "softmax":
            return nn.Softmax(dim=1 if image else -1)
    raise SpecError(f"unknown activation '{fn}'")


def _with_activation(core: nn.Module, fn: str | None, image: bool) -> nn.Module:
    return nn.Sequential(core, activation(fn, image)) if fn else core


def _same_pads(node: Node, kernel: s.Pair, strides: s.Pair) -> tuple[tuple[int, int], tuple[int, int]]:
    (kh, kw), (sh, sw) = pair(kernel), pair(strides)
    return same_padding(node.in_shape[0], kh, sh), same_padding(node.in_shape[1], kw, sw)


def _conv(node: Node, layer: s.Conv2d) -> nn.Module:
    cin = node.in_shape[2]
    args = dict(
        kernel_size=pair(layer.kernel_size),
        stride=pair(layer.strides),
        groups=layer.groups,
        bias=layer.use_bias,
    )
    if layer.padding == "valid":
        return nn.Conv2d(cin, layer.filters, **args)  # type: ignore[arg-type]
    (top, bottom), (left, right) = _same_pads(node, layer.kernel_size, layer.strides)
    if top == bottom and left == right:
        return nn.Conv2d(cin, layer.filters, padding=(top, left), **args)  # type: ignore[arg-type]
    # torch rejects padding='same' with stride > 1; TensorFlow puts the odd pixel after, so pad first.
    return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), nn.Conv2d(cin, layer.filters, **args))  # type: ignore[arg-type]


def _pool(node: Node, layer: s.MaxPool2d | s.AvgPool2d) -> nn.Module:
    kernel = pair(layer.pool_size)
    stride = pair(layer.strides if layer.strides is not None else layer.pool_size)
    is_max = layer.type == "max_pool2d"
    if layer.padding == "valid":
        return nn.MaxPool2d(kernel, stride) if is_max else nn.AvgPool2d(kernel, stride)
    (top, bottom), (left, right) = _same_pads(node, kernel, stride)
    if top == bottom and left == right:
        if is_max:
            return nn.MaxPool2d(kernel, stride, padding=(top, left))
        # Keras averages over real cells only; torch counts padding unless told otherwise.
        return nn.AvgPool2d(kernel, stride, padding=(top, left), count_include_pad=False)
    pad = (left, right, top, bottom)
    if is_max:
        return nn.Sequential(nn.ConstantPad2d(pad, float("-inf")), nn.MaxPool2d(kernel, stride))
    return L.SameAvgPool2d(kernel, stride, pad)


def build_layer(node: Node) -> nn.Module:
    layer, shape = node.layer, node.in_shape
    image = len(node.shape) == 3
    match layer:
        case s.Dense():
            return _with_activation(
                nn.Linear(shape[-1], layer.units, bias=layer.use_bias), layer.activation, False
            )
        case s.Conv2d():
            return _with_activation(_conv(node, layer), layer.activation, True)
        case s.MaxPool2d() | s.AvgPool2d():
            return _pool(node, layer)
        case s.GlobalAvgPool():
            return L.GlobalAvgPool((2, 3) if len(shape) == 3 else (1,))
        case s.Flatten():
            return nn.Flatten()
        case s.Dropout():
            return nn.Dropout(layer.rate)
        case s.BatchNorm():
            norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            return norm(shape[-1], eps=layer.epsilon, momentum=1.0 - layer.momentum)
        case s.LayerNorm():
            return nn.LayerNorm(shape[-1], eps=layer.epsilon)
        case s.Embedding():
            return nn.Embedding(layer.vocab_size, layer.dim)
        case s.PositionEmbedding():
            return L.PositionEmbedding(layer.max_length, shape[-1])
        case s.LSTM():
            return L.Recurrent(nn.LSTM(shape[-1], layer.units, batch_first=True), layer.return_sequences)
        case s.GRU():
            return L.Recurrent(nn.GRU(shape[-1], layer.units, batch_first=True), layer.return_sequences)
        case s.Attention():
            return L.SelfAttention(shape[-1], layer.heads)
        case s.ActivationLayer():
            return activation(layer.fn, image)
        case s.Add():
            return L.Add()
        case s.Concat():
            return L.Concat(1 if image else -1)
    raise SpecError(f"layer '{node.name}': type '{layer.type}' has no PyTorch builder")
