"""Writes a spec as the PyTorch and the Keras program a person would write by hand, for `show --code`.

Both programs compute what the twins compute (frameworks/torch/build.py, frameworks/keras/build.py),
with every default that differs between the frameworks spelled out. Only text is made here: neither
framework is imported.
"""

from __future__ import annotations

import itertools
import keyword
import re
from dataclasses import dataclass

from bakeoff.errors import SpecError
from bakeoff.spec import schema as s
from bakeoff.spec.graph import Graph, Node, pair, same_padding

INDENT = "    "
# The width Black and ruff format use by default: the programs are meant to be pasted elsewhere.
WIDTH = 88
# Names a variable or attribute must not take: they would shadow a module, a helper or a Module method.
RESERVED = frozenset(
    {"self", "torch", "nn", "F", "keras", "layers", "inputs", "outputs", "model"}
    | {"gelu_tanh", "SameAvgPool2d", "PositionEmbedding"}
    | {"forward", "training", "train", "eval", "to", "type", "float", "double", "half", "cpu", "cuda"}
    | {"apply", "modules", "children", "parameters", "buffers", "state_dict", "load_state_dict", "compile"}
    | {"zero_grad", "register_buffer", "register_parameter", "add_module"}
)
CHAIN_NAMES = ("x", "h", "y", "out")

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

KERAS_GELU_TANH = """
def gelu_tanh(x):
    # The string "gelu" is exact in Keras; the tanh approximation must be asked for.
    return keras.activations.gelu(x, approximate=True)
"""

KERAS_POSITION_EMBEDDING = '''
class PositionEmbedding(layers.Layer):
    """Adds a learned vector per position to a (batch, steps, features) sequence."""

    def __init__(self, max_length, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table", shape=(self.max_length, input_shape[-1]), initializer="zeros"
        )

    def call(self, x):
        return x + self.table[: keras.ops.shape(x)[1]]
'''


@dataclass(frozen=True)
class Wiring:
    """The nodes the output depends on, in spec order, and the variable that holds each value."""

    nodes: tuple[Node, ...]
    var: dict[str, str]


def torch_code(graph: Graph) -> str:
    """A runnable program defining the model as an nn.Module subclass, ending in `model = ...`."""
    wiring = _wiring(graph, {i.name: ident(i.name) for i in graph.inputs})
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
    return _join([_torch_imports("\n".join(sections)), *sections])


def keras_code(graph: Graph) -> str:
    """A runnable program building the model with keras.Sequential or the functional API as `model`."""
    live = _live_nodes(graph)
    helpers = []
    if any(_activation_of(n) == "gelu_tanh" for n in live):
        helpers.append(KERAS_GELU_TANH)
    if any(n.type == "position_embedding" for n in live):
        helpers.append(KERAS_POSITION_EMBEDDING)
    model = _keras_sequential(graph) if _is_chain(graph, live) else _keras_functional(graph)
    return _join(["import keras\nfrom keras import layers", *helpers, "\n".join(model)])


def class_name(spec_name: str) -> str:
    """CamelCase of the spec name: resnet-mini -> ResnetMini."""
    words = re.split(r"[^0-9A-Za-z]+", spec_name)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[:1].isalpha() else f"Model{name}"


def ident(name: str) -> str:
    """The spec name as a Python variable or attribute, moved aside when it would shadow something."""
    return f"{name}_" if keyword.iskeyword(name) or name in RESERVED else name


# --- wiring shared by both programs ----------------------------------------------------------------


def _live_nodes(graph: Graph) -> tuple[Node, ...]:
    needed = {graph.output}
    for node in reversed(graph.nodes):
        if node.name in needed:
            needed.update(node.inputs)
    return tuple(n for n in graph.nodes if n.name in needed)


def _wiring(graph: Graph, input_vars: dict[str, str]) -> Wiring:
    """Values read only by the very next node flow through one reused variable; others keep their name."""
    nodes = _live_nodes(graph)
    readers: dict[str, set[int]] = {}
    for index, node in enumerate(nodes):
        for source in node.inputs:
            readers.setdefault(source, set()).add(index)
    kept = {ident(n.name) for i, n in enumerate(nodes) if readers.get(n.name, set()) - {i + 1}}
    # An input read only by the first node may be overwritten by the chain.
    busy = kept | {var for name, var in input_vars.items() if readers.get(name, set()) - {0}}
    chain = next(c for c in CHAIN_NAMES if c not in busy)
    var = dict(input_vars)
    for node in nodes:
        var[node.name] = ident(node.name) if ident(node.name) in kept else chain
    return Wiring(nodes, var)


def _activation_of(node: Node) -> str | None:
    return getattr(node.layer, "activation", None) or getattr(node.layer, "fn", None)


def _is_image(node: Node) -> bool:
    return len(node.shape) == 3


# --- formatting helpers ----------------------------------------------------------------------------


def _num(value: float) -> str:
    """A float as a person writes it: 1 - 0.9 is 0.1, 1e-05 is 1e-5."""
    text = repr(float(f"{value:.12g}"))
    return re.sub(r"e([+-]?)0*(\d)", lambda m: f"e{m.group(1).replace('+', '')}{m.group(2)}", text)


def _int_or_pair(value: tuple[int, int]) -> str:
    return str(value[0]) if value[0] == value[1] else str(value)


def _tuple(values: tuple[int, ...]) -> str:
    return f"({values[0]},)" if len(values) == 1 else str(tuple(values))


def _quote(text: str) -> str:
    return f'"{text}"' if '"' not in text and "\\" not in text else repr(text)


def _join(sections: list[str]) -> str:
    """Top-level sections with the blank lines ruff format wants: two around a def or a class."""
    text = sections[0].strip()
    for before, after in itertools.pairwise(sections):
        definition = any(p.lstrip().startswith(("def ", "class ")) for p in (before, after))
        text += ("\n\n\n" if definition else "\n\n") + after.strip()
    return text + "\n"


def _call(indent: str, prefix: str, func: str, args: list[str], suffix: str = "") -> list[str]:
    """A call on one line when it fits, else wrapped exactly as ruff format wraps it."""
    joined = ", ".join(args)
    head = f"{indent}{prefix}{func}({joined})"
    if len(head + suffix) <= WIDTH:
        return [head + suffix]
    inner = indent + INDENT
    # ruff splits the last brackets first: a trailing call `(x)` opens up if the rest fits.
    if suffix.startswith("(") and len(head + "(") <= WIDTH:
        return [head + "(", inner + suffix[1:-1], indent + ")"]
    if len(inner + joined) <= WIDTH:
        return [f"{indent}{prefix}{func}(", inner + joined, f"{indent}){suffix}"]
    return [f"{indent}{prefix}{func}(", *(f"{inner}{a}," for a in args), f"{indent}){suffix}"]


# --- PyTorch ---------------------------------------------------------------------------------------


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
    return _call(INDENT * 2, f"self.{ident(node.name)} = ", *module)


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
            return "nn.Dropout", [_num(layer.rate)]
        case s.BatchNorm():
            norm = "nn.BatchNorm2d" if len(shape) == 3 else "nn.BatchNorm1d"
            # torch's momentum weighs the new batch, Keras' the old statistics.
            eps = f"eps={_num(layer.epsilon)}"
            return norm, [str(shape[-1]), eps, f"momentum={_num(1 - layer.momentum)}"]
        case s.LayerNorm():
            return "nn.LayerNorm", [str(shape[-1]), f"eps={_num(layer.epsilon)}"]
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
        kernel, strides = layer.pool_size, _pool_strides(layer)
    return None if _even_padding(node, kernel, strides) else _pads(node, kernel, strides)


def _torch_conv_args(node: Node, layer: s.Conv2d) -> list[str]:
    args = [str(node.in_shape[-1]), str(layer.filters), _int_or_pair(pair(layer.kernel_size))]
    stride = pair(layer.strides)
    if stride != (1, 1):
        args.append(f"stride={_int_or_pair(stride)}")
    if layer.padding == "same":
        if stride == (1, 1):
            args.append('padding="same"')
        elif (even := _even_padding(node, layer.kernel_size, layer.strides)) and any(even):
            args.append(f"padding={_int_or_pair(even)}")
    if layer.groups != 1:
        args.append(f"groups={layer.groups}")
    if not layer.use_bias:
        args.append("bias=False")
    return args


def _pool_strides(layer: s.MaxPool2d | s.AvgPool2d) -> s.Pair:
    return layer.strides if layer.strides is not None else layer.pool_size


def _needs_same_avg_pool(node: Node) -> bool:
    return node.type == "avg_pool2d" and _uneven_pads(node) is not None


def _torch_pool(node: Node, layer: s.MaxPool2d | s.AvgPool2d) -> tuple[str, list[str]]:
    kernel, stride = pair(layer.pool_size), pair(_pool_strides(layer))
    if _needs_same_avg_pool(node):
        return "SameAvgPool2d", [_int_or_pair(kernel), _int_or_pair(stride), str(_uneven_pads(node))]
    args = [_int_or_pair(kernel)]
    if stride != kernel:
        args.append(f"stride={_int_or_pair(stride)}")
    even = _even_padding(node, kernel, stride) if layer.padding == "same" else None
    if even and any(even):
        args.append(f"padding={_int_or_pair(even)}")
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
        *([_torch_activation(fn, "{}", _is_image(node))] if (fn := _activation_of(node)) else []),
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


# --- Keras -----------------------------------------------------------------------------------------


def _is_chain(graph: Graph, live: tuple[Node, ...]) -> bool:
    """A plain stack of one-input layers: what keras.Sequential expresses."""
    if len(graph.inputs) != 1 or any(n.type == "attention" for n in live):
        return False
    previous = graph.inputs[0].name
    for node in live:
        if node.inputs != (previous,):
            return False
        previous = node.name
    return True


def _keras_input(spec: s.InputSpec) -> tuple[str, list[str]]:
    args = [f"shape={_tuple(spec.shape)}"]
    if spec.dtype != "float32":
        args.append(f'dtype="{spec.dtype}"')
    return "keras.Input", [*args, f"name={_quote(spec.name)}"]


def _keras_sequential(graph: Graph) -> list[str]:
    indent = INDENT * 2
    entries = _call(indent, "", *_keras_input(graph.inputs[0]), ",")
    for node in _live_nodes(graph):
        entries += _call(indent, "", *_keras_layer(node), ",")
    name = f"{INDENT}name={_quote(graph.spec.name)},"
    return ["model = keras.Sequential(", f"{INDENT}[", *entries, f"{INDENT}],", name, ")"]


def _keras_functional(graph: Graph) -> list[str]:
    single = len(graph.inputs) == 1
    input_vars = {i.name: "inputs" if single else ident(i.name) for i in graph.inputs}
    wiring = _wiring(graph, input_vars)
    var = {**wiring.var, graph.output: "outputs"}
    lines = [line for i in graph.inputs for line in _call("", f"{input_vars[i.name]} = ", *_keras_input(i))]
    for node in wiring.nodes:
        lines += _call("", f"{var[node.name]} = ", *_keras_layer(node), _keras_args(node, var))
    inputs = "inputs" if single else "[" + ", ".join(input_vars.values()) + "]"
    return [*lines, f"model = keras.Model({inputs}, outputs, name={_quote(graph.spec.name)})"]


def _keras_args(node: Node, var: dict[str, str]) -> str:
    """The call on the layer: Add and Concatenate take a list, MultiHeadAttention query and value."""
    args = [var[source] for source in node.inputs]
    if node.type in ("add", "concat"):
        return f"([{', '.join(args)}])"
    if node.type == "attention":
        return f"({args[0]}, {args[0]})"
    return f"({args[0]})"


def _keras_activation(fn: str | None) -> list[str]:
    if fn is None:
        return []
    return ["activation=gelu_tanh" if fn == "gelu_tanh" else f'activation="{fn}"']


def _keras_layer(node: Node) -> tuple[str, list[str]]:
    func, args = _keras_layer_args(node)
    return f"layers.{func}" if func != "PositionEmbedding" else func, [*args, f'name="{node.name}"']


def _keras_layer_args(node: Node) -> tuple[str, list[str]]:
    layer = node.layer
    match layer:
        case s.Dense():
            bias = [] if layer.use_bias else ["use_bias=False"]
            return "Dense", [str(layer.units), *_keras_activation(layer.activation), *bias]
        case s.Conv2d():
            return "Conv2D", _keras_conv_args(layer)
        case s.MaxPool2d() | s.AvgPool2d():
            return _keras_pool(layer)
        case s.GlobalAvgPool():
            return f"GlobalAveragePooling{2 if len(node.in_shape) == 3 else 1}D", []
        case s.Flatten():
            return "Flatten", []
        case s.Dropout():
            return "Dropout", [_num(layer.rate)]
        case s.BatchNorm():
            momentum, epsilon = _num(layer.momentum), _num(layer.epsilon)
            return "BatchNormalization", [f"momentum={momentum}", f"epsilon={epsilon}"]
        case s.LayerNorm():
            return "LayerNormalization", [f"epsilon={_num(layer.epsilon)}"]
        case s.Embedding():
            return "Embedding", [str(layer.vocab_size), str(layer.dim)]
        case s.PositionEmbedding():
            return "PositionEmbedding", [str(layer.max_length)]
        case s.LSTM():
            return "LSTM", [str(layer.units), *(["return_sequences=True"] if layer.return_sequences else [])]
        case s.GRU():
            sequences = ["return_sequences=True"] if layer.return_sequences else []
            # reset_after=True is the formulation torch.nn.GRU computes.
            return "GRU", [str(layer.units), *sequences, "reset_after=True"]
        case s.Attention():
            key_dim = node.in_shape[-1] // layer.heads
            return "MultiHeadAttention", [f"num_heads={layer.heads}", f"key_dim={key_dim}"]
        case s.ActivationLayer():
            return "Activation", ["gelu_tanh" if layer.fn == "gelu_tanh" else f'"{layer.fn}"']
        case s.Add():
            return "Add", []
        case s.Concat():
            return "Concatenate", []
    raise SpecError(f"layer '{node.name}': type '{layer.type}' has no Keras code")


def _keras_conv_args(layer: s.Conv2d) -> list[str]:
    args = [str(layer.filters), _int_or_pair(pair(layer.kernel_size))]
    if pair(layer.strides) != (1, 1):
        args.append(f"strides={_int_or_pair(pair(layer.strides))}")
    if layer.padding == "same":
        args.append('padding="same"')
    if layer.groups != 1:
        args.append(f"groups={layer.groups}")
    if not layer.use_bias:
        args.append("use_bias=False")
    return [*args, *_keras_activation(layer.activation)]


def _keras_pool(layer: s.MaxPool2d | s.AvgPool2d) -> tuple[str, list[str]]:
    kernel, stride = pair(layer.pool_size), pair(_pool_strides(layer))
    args = [_int_or_pair(kernel)]
    if stride != kernel:
        args.append(f"strides={_int_or_pair(stride)}")
    if layer.padding == "same":
        args.append('padding="same"')
    return ("MaxPooling2D" if layer.type == "max_pool2d" else "AveragePooling2D"), args
