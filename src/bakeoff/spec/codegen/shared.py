"""What the PyTorch and the Keras program writers share: the names a variable may take, which variable
holds each value (the wiring), and numbers, calls and sections laid out as ruff format writes them."""

from __future__ import annotations

import itertools
import keyword
import re
from dataclasses import dataclass

from bakeoff.spec import schema as s
from bakeoff.spec.graph import Graph, Node

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


@dataclass(frozen=True)
class Wiring:
    """The nodes the output depends on, in spec order, and the variable that holds each value."""

    nodes: tuple[Node, ...]
    var: dict[str, str]


def class_name(spec_name: str) -> str:
    """CamelCase of the spec name: resnet-mini -> ResnetMini."""
    words = re.split(r"[^0-9A-Za-z]+", spec_name)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[:1].isalpha() else f"Model{name}"


def ident(name: str) -> str:
    """The spec name as a Python variable or attribute, moved aside when it would shadow something."""
    return f"{name}_" if keyword.iskeyword(name) or name in RESERVED else name


# --- wiring ----------------------------------------------------------------------------------------


def live_nodes(graph: Graph) -> tuple[Node, ...]:
    """The nodes the output depends on, in spec order: a layer nothing reads is left out."""
    needed = {graph.output}
    for node in reversed(graph.nodes):
        if node.name in needed:
            needed.update(node.inputs)
    return tuple(n for n in graph.nodes if n.name in needed)


def wiring_of(graph: Graph, input_vars: dict[str, str]) -> Wiring:
    """Values read only by the very next node flow through one reused variable; others keep their name."""
    nodes = live_nodes(graph)
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


def activation_of(node: Node) -> str | None:
    """A layer's fused activation, or an activation layer's function; None for neither."""
    return getattr(node.layer, "activation", None) or getattr(node.layer, "fn", None)


def pool_strides(layer: s.MaxPool2d | s.AvgPool2d) -> s.Pair:
    """A pooling layer's strides: the pool size where the spec gives none."""
    return layer.strides if layer.strides is not None else layer.pool_size


# --- formatting helpers ----------------------------------------------------------------------------


def num(value: float) -> str:
    """A float as a person writes it: 1 - 0.9 is 0.1, 1e-05 is 1e-5."""
    text = repr(float(f"{value:.12g}"))
    return re.sub(r"e([+-]?)0*(\d)", lambda m: f"e{m.group(1).replace('+', '')}{m.group(2)}", text)


def int_or_pair(value: tuple[int, int]) -> str:
    """(3, 3) as 3, (3, 1) as (3, 1): the way both frameworks take a size."""
    return str(value[0]) if value[0] == value[1] else str(value)


def join_sections(sections: list[str]) -> str:
    """Top-level sections with the blank lines ruff format wants: two around a def or a class."""
    text = sections[0].strip()
    for before, after in itertools.pairwise(sections):
        definition = any(p.lstrip().startswith(("def ", "class ")) for p in (before, after))
        text += ("\n\n\n" if definition else "\n\n") + after.strip()
    return text + "\n"


def call_lines(indent: str, prefix: str, func: str, args: list[str], suffix: str = "") -> list[str]:
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
