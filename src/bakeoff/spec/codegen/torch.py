"""Writes a spec as the PyTorch program a person would write by hand: an nn.Module subclass, with
TensorFlow's 'same' padding and every other default that differs from Keras spelled out."""

from __future__ import annotations

import re

from bakeoff.errors import SpecError
from bakeoff.spec import schema as s
from bakeoff.spec.codegen.shared import (
    INDENT,
    WIDTH,
    Wiring,
    activation_of,
    call_lines,
    class_name,
    ident,
    int_or_pair,
    join_sections,
    num,
    pool_strides,
    wiring_of,
)
from bakeoff.spec.graph import Graph, Node, pair, same_padding

TORCH_SAME_AVG_POOL = '''
class SameAvgPool2d(nn.Module):
    """TensorFlow's average pooling with uneven 'same' padding: pads are not counted."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding

    def forward(self, x):
        # nn.AvgPool2d pads evenly only: pad here, divide by the share of real cells.
        summed = F.avg_pool2d(F.pad(x, self.padding), self.kernel_size, self.stride)
        ones = torch.ones_like(x[:1, :1])
        counted = F.avg_pool2d(F.pad(ones, self.padding), self.kernel_size, self.stride)
        return summed / counted
'''


def torch_code(graph: Graph) -> str:
    """A runnable program defining the model as an nn.Module subclass, ending in `model = ...`."""
    wiring = wiring_of(graph, {i.name: ident(i.name) for i in graph.inputs})
    name = class_name(graph.spec.name)
    params = ", ".join(["self", *(ident(i.name) for i in graph.inputs)])
    cls = [
        f"class {name}(nn.Module):",
        f"{INDENT}def __init__(self):",
        f"{INDENT * 2}super().__init__()",
        *(line for node in wiring.nodes for line in _torch_init(node)),
        "",
        f"{INDENT}def forward({params}):",
        *(f"{INDENT * 2}{line}" for line in _torch_forward_body(graph, wiring)),
    ]
    helpers = [TORCH_SAME_AVG_POOL] if any(_needs_same_avg_pool(n) for n in wiring.nodes) else []
    sections = [*helpers, "\n".join(cls), f"model = {name}()"]
    return join_sections([_torch_imports("\n".join(sections)), *sections])


def _is_image(node: Node) -> bool:
    return len(node.shape) == 3


def _torch_imports(body: str) -> str:
    lines = []
    if re.search(r"\btorch\.", body):
        lines.append("import torch")
    if re.search(r"\bF\.", body):
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    return "\n".join(lines) + "\n"


def _torch_init(node: Node) -> list[str]:
    module = _torch_module(node)
    if module is None:
        return []
    return call_lines(INDENT * 2, f"self.{ident(node.name)} = ", *module)


def _torch_module(node: Node) -> tuple[str, list[str]] | None:
    """The nn constructor and its arguments, or None for layers done inline in forward."""
    layer, shape = node.layer, node.in_shape
    match layer:
        case s.Dense():
            bias = [] if layer.use_bias else ["bias=False"]
            return "nn.Linear", [str(shape[-1]), str(layer.units), *bias]
        case s.Conv2d():
            return "nn.Conv2d", _torch_conv_args(node, layer)
        case s.MaxPool2d() | s.AvgPool2d():
            return _torch_pool(node, layer)
        case s.Dropout():
            return "nn.Dropout", [num(layer.rate)]
        case s.BatchNorm():
            norm = "nn.BatchNorm2d" if len(shape) == 3 else "nn.BatchNorm1d"
            # torch's momentum weighs the new batch, Keras' the old statistics.
            eps = f"eps={num(layer.epsilon)}"
            return norm, [str(shape[-1]), eps, f"momentum={num(1 - layer.momentum)}"]
        case s.LayerNorm():
            return "nn.LayerNorm", [str(shape[-1]), f"eps={num(layer.epsilon)}"]
        case s.Embedding():
            return "nn.Embedding", [str(layer.vocab_size), str(layer.dim)]
        case s.PositionEmbedding():
            return "nn.Parameter", [f"torch.zeros({layer.max_length}, {shape[-1]})"]
        case s.LSTM() | s.GRU():
            return f"nn.{layer.type.upper()}", [str(shape[-1]), str(layer.units), "batch_first=True"]
        case s.Attention():
            return "nn.MultiheadAttention", [str(shape[-1]), str(layer.heads), "batch_first=True"]
        case s.GlobalAvgPool() | s.Flatten() | s.ActivationLayer() | s.Add() | s.Concat():
            return None
    raise SpecError(f"layer '{node.name}': type '{layer.type}' has no PyTorch code")


def _pads(node: Node, kernel: s.Pair, strides: s.Pair) -> tuple[int, int, int, int]:
    """TensorFlow's 'same' padding as (left, right, top, bottom), the order F.pad takes."""
    (kh, kw), (sh, sw) = pair(kernel), pair(strides)
    top, bottom = same_padding(node.in_shape[0], kh, sh)
    left, right = same_padding(node.in_shape[1], kw, sw)
    return left, right, top, bottom


def _even_padding(node: Node, kernel: s.Pair, strides: s.Pair) -> tuple[int, int] | None:
    left, right, top, bottom = _pads(node, kernel, strides)
    return (top, left) if left == right and top == bottom else None


def _uneven_pads(node: Node) -> tuple[int, int, int, int] | None:
    """Padding forward must apply before the module: torch modules only pad evenly."""
    layer = node.layer
    if not isinstance(layer, s.Conv2d | s.MaxPool2d | s.AvgPool2d) or layer.padding == "valid":
        return None
    if isinstance(layer, s.Conv2d):
        kernel, strides = layer.kernel_size, layer.strides
        if pair(strides) == (1, 1):
            return None  # padding="same" pads like TensorFlow when the stride is 1
    else:
        kernel, strides = layer.pool_size, pool_strides(layer)
    return None if _even_padding(node, kernel, strides) else _pads(node, kernel, strides)


def _torch_conv_args(node: Node, layer: s.Conv2d) -> list[str]:
    args = [str(node.in_shape[-1]), str(layer.filters), int_or_pair(pair(layer.kernel_size))]
    stride = pair(layer.strides)
    if stride != (1, 1):
        args.append(f"stride={int_or_pair(stride)}")
    if layer.padding == "same":
        if stride == (1, 1):
            args.append('padding="same"')
        elif (even := _even_padding(node, layer.kernel_size, layer.strides)) and any(even):
            args.append(f"padding={int_or_pair(even)}")
    if layer.groups != 1:
        args.append(f"groups={layer.groups}")
    if not layer.use_bias:
        args.append("bias=False")
    return args


def _needs_same_avg_pool(node: Node) -> bool:
    return node.type == "avg_pool2d" and _uneven_pads(node) is not None


def _torch_pool(node: Node, layer: s.MaxPool2d | s.AvgPool2d) -> tuple[str, list[str]]:
    kernel, stride = pair(layer.pool_size), pair(pool_strides(layer))
    if _needs_same_avg_pool(node):
        return "SameAvgPool2d", [int_or_pair(kernel), int_or_pair(stride), str(_uneven_pads(node))]
    args = [int_or_pair(kernel)]
    if stride != kernel:
        args.append(f"stride={int_or_pair(stride)}")
    even = _even_padding(node, kernel, stride) if layer.padding == "same" else None
    if even and any(even):
        args.append(f"padding={int_or_pair(even)}")
        if layer.type == "avg_pool2d":
            # Keras averages over real cells only; torch counts the padding unless told not to.
            args.append("count_include_pad=False")
    return ("nn.MaxPool2d" if layer.type == "max_pool2d" else "nn.AvgPool2d"), args


def _torch_forward_body(graph: Graph, wiring: Wiring) -> list[str]:
    lines = [
        f"# {ident(i.name)}: (batch, {i.shape[2]}, {i.shape[0]}, {i.shape[1]}), channels first"
        for i in graph.inputs
        if len(i.shape) == 3
    ]
    for node in wiring.nodes:
        args = [wiring.var[source] for source in node.inputs]
        lines += _torch_forward(node, args, wiring.var[node.name])
    out = wiring.var[graph.output]
    if lines[-1].startswith(f"{out} = "):
        return [*lines[:-1], "return " + lines[-1].removeprefix(f"{out} = ")]
    return [*lines, f"return {out}"]


def _torch_forward(node: Node, args: list[str], out: str) -> list[str]:
    layer, x, attr = node.layer, args[0], f"self.{ident(node.name)}"
    match layer:
        case s.Dense() | s.Conv2d() | s.MaxPool2d() | s.AvgPool2d():
            return _torch_padded_call(node, x, out)
        case s.GlobalAvgPool():
            return [f"{out} = {x}.mean(dim={'(2, 3)' if len(node.in_shape) == 3 else 1})"]
        case s.Flatten():
            return [f"{out} = torch.flatten({x}, 1)"]
        case s.PositionEmbedding():
            return [f"{out} = {x} + {attr}[: {x}.shape[1]]"]
        case s.LSTM() | s.GRU():
            last = [] if layer.return_sequences else [f"{out} = {out}[:, -1]"]
            return [f"{out}, _ = {attr}({x})", *last]
        case s.Attention():
            return [f"{out} = {attr}({x}, {x}, {x}, need_weights=False)[0]"]
        case s.ActivationLayer():
            return [f"{out} = {_torch_activation(layer.fn, x, _is_image(node))}"]
        case s.Add():
            return [f"{out} = {' + '.join(args)}"]
        case s.Concat():
            return [f"{out} = torch.cat([{', '.join(args)}], dim={1 if _is_image(node) else -1})"]
    return [f"{out} = {attr}({x})"]


def _torch_padded_call(node: Node, x: str, out: str) -> list[str]:
    """Pad, module, activation: nested on one line when it fits, else one line each."""
    # SameAvgPool2d pads by itself.
    pads = None if _needs_same_avg_pool(node) else _uneven_pads(node)
    fill = ', value=float("-inf")' if node.type == "max_pool2d" else ""
    steps = [
        *([f"F.pad({{}}, {pads}{fill})"] if pads else []),
        f"self.{ident(node.name)}({{}})",
        *([_torch_activation(fn, "{}", _is_image(node))] if (fn := activation_of(node)) else []),
    ]
    # torch modules pad evenly only, and padding="same" refuses a stride above 1.
    comment = ["# Pad as TensorFlow's 'same' does: the odd pixel goes after (right, bottom)."] if pads else []
    nested = x
    for step in steps:
        nested = step.format(nested)
    if len(f"{INDENT * 2}{out} = {nested}") <= WIDTH:
        return [*comment, f"{out} = {nested}"]
    return [*comment, *(f"{out} = {step.format(x if i == 0 else out)}" for i, step in enumerate(steps))]


def _torch_activation(fn: str | None, x: str, image: bool) -> str:
    match fn:
        case None:
            return x
        case "relu" | "tanh" | "sigmoid":
            return f"torch.{fn}({x})"
        case "silu" | "gelu":
            return f"F.{fn}({x})"
        case "gelu_tanh":
            return f'F.gelu({x}, approximate="tanh")'
        case "softmax":
            return f"torch.softmax({x}, dim={1 if image else -1})"
    raise SpecError(f"unknown activation '{fn}'")
