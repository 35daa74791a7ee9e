"""Writes a spec as the Keras program a person would write by hand: keras.Sequential for a plain stack
of one-input layers, the functional API otherwise."""

from __future__ import annotations

from bakeoff.errors import SpecError
from bakeoff.spec import schema as s
from bakeoff.spec.codegen.shared import (
    INDENT,
    activation_of,
    call_lines,
    ident,
    int_or_pair,
    join_sections,
    live_nodes,
    num,
    pool_strides,
    wiring_of,
)
from bakeoff.spec.graph import Graph, Node, pair

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


def keras_code(graph: Graph) -> str:
    """A runnable program building the model with keras.Sequential or the functional API as `model`."""
    live = live_nodes(graph)
    helpers = []
    if any(activation_of(n) == "gelu_tanh" for n in live):
        helpers.append(KERAS_GELU_TANH)
    if any(n.type == "position_embedding" for n in live):
        helpers.append(KERAS_POSITION_EMBEDDING)
    model = _keras_sequential(graph) if _is_chain(graph, live) else _keras_functional(graph)
    return join_sections(["import keras\nfrom keras import layers", *helpers, "\n".join(model)])


def _tuple(values: tuple[int, ...]) -> str:
    return f"({values[0]},)" if len(values) == 1 else str(tuple(values))


def _quote(text: str) -> str:
    return f'"{text}"' if '"' not in text and "\\" not in text else repr(text)


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
    entries = call_lines(indent, "", *_keras_input(graph.inputs[0]), ",")
    for node in live_nodes(graph):
        entries += call_lines(indent, "", *_keras_layer(node), ",")
    name = f"{INDENT}name={_quote(graph.spec.name)},"
    return ["model = keras.Sequential(", f"{INDENT}[", *entries, f"{INDENT}],", name, ")"]


def _keras_functional(graph: Graph) -> list[str]:
    single = len(graph.inputs) == 1
    input_vars = {i.name: "inputs" if single else ident(i.name) for i in graph.inputs}
    wiring = wiring_of(graph, input_vars)
    var = {**wiring.var, graph.output: "outputs"}
    lines = [
        line for i in graph.inputs for line in call_lines("", f"{input_vars[i.name]} = ", *_keras_input(i))
    ]
    for node in wiring.nodes:
        lines += call_lines("", f"{var[node.name]} = ", *_keras_layer(node), _keras_args(node, var))
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
            return "Dropout", [num(layer.rate)]
        case s.BatchNorm():
            momentum, epsilon = num(layer.momentum), num(layer.epsilon)
            return "BatchNormalization", [f"momentum={momentum}", f"epsilon={epsilon}"]
        case s.LayerNorm():
            return "LayerNormalization", [f"epsilon={num(layer.epsilon)}"]
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
    args = [str(layer.filters), int_or_pair(pair(layer.kernel_size))]
    if pair(layer.strides) != (1, 1):
        args.append(f"strides={int_or_pair(pair(layer.strides))}")
    if layer.padding == "same":
        args.append('padding="same"')
    if layer.groups != 1:
        args.append(f"groups={layer.groups}")
    if not layer.use_bias:
        args.append("use_bias=False")
    return [*args, *_keras_activation(layer.activation)]


def _keras_pool(layer: s.MaxPool2d | s.AvgPool2d) -> tuple[str, list[str]]:
    kernel, stride = pair(layer.pool_size), pair(pool_strides(layer))
    args = [int_or_pair(kernel)]
    if stride != kernel:
        args.append(f"strides={int_or_pair(stride)}")
    if layer.padding == "same":
        args.append('padding="same"')
    return ("MaxPooling2D" if layer.type == "max_pool2d" else "AveragePooling2D"), args
