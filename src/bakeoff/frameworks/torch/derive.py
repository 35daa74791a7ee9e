"""A spec from a user's torch module: torch.fx traces its forward, ShapeProp gives every value's shape,
and each module call, function and method maps to a spec layer or is listed as unsupported."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from bakeoff.errors import PairError, one_line
from bakeoff.frameworks.torch.parity import configure
from bakeoff.spec.derive import Builder, torch_name
from bakeoff.spec.graph import same_padding
from bakeoff.twins.byo import collect_pairs, load_object, user_failure

ACTIVATION_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.SiLU: "silu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
}
ACTIVATION_FUNCTIONS: dict[Any, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.silu: "silu",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
}
ACTIVATION_METHODS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}
ADDS = (operator.add, operator.iadd, torch.add)
FLATTENS = (torch.flatten,)
RESHAPES = ("view", "reshape", "flatten")
KNOWN_MODULES = (
    *ACTIVATION_MODULES,
    nn.Identity, nn.GELU, nn.Softmax, nn.Flatten, nn.AdaptiveAvgPool2d, nn.Linear, nn.Conv2d,
    nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm,
    nn.Embedding, nn.LSTM, nn.GRU, nn.MultiheadAttention,
)  # fmt: skip


@dataclass(frozen=True)
class Value:
    """What an fx node holds: a spec node's output, or a value in between that only some uses accept."""

    name: str = ""  # the spec node (or input) whose output this is
    # tensor | pooled (N,C,1,1 awaiting flatten) | rnn | rnn_seq | mha | other (sizes) | blocked
    kind: str = "tensor"
    shape: tuple[int, ...] = ()  # torch's shape, batch first


def collect(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every model of the request in turn; one that cannot be derived says so in its own entry."""
    meta = configure(request["threads"])
    arrays, models = collect_pairs(request["models"], _derive)
    return arrays, {**meta, **models}


def _derive(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ref = request["ref"]
    model = load_object(ref, "--torch")
    shapes = [tuple(s) for s in request["input_shapes"]]
    return {}, {"spec": spec_of(model, ref, shapes, request["name"])}


def spec_of(model: Any, ref: str, shapes: list[tuple[int, ...]], name: str) -> dict[str, Any]:
    """The spec of a torch module; `shapes` channels-last. Runs in a worker for a file, and in the
    caller's own process for `bakeoff.parity`'s model object (whose class no worker can import); the
    module is left in the train/eval mode it came in."""
    if not isinstance(model, nn.Module):
        raise PairError(f"--torch {ref!r} gave a {type(model).__name__}, not a torch.nn.Module")
    training = model.training
    model.eval()
    try:
        return _spec(model, ref, shapes, name)
    finally:
        model.train(training)


def _spec(model: nn.Module, ref: str, shapes: list[tuple[int, ...]], name: str) -> dict[str, Any]:
    try:
        traced = fx.symbolic_trace(model)
    except Exception as exc:
        raise PairError(
            f"--torch {ref!r}: torch.fx cannot trace {type(model).__name__}.forward "
            f"({type(exc).__name__}: {one_line(str(exc), 240)}); data-dependent Python control flow "
            "blocks a derived spec, give a --keras model too"
        ) from exc
    # Torch takes images channels-first; the shapes come channels-last, as a spec holds them.
    examples = [torch.randn(2, *((s[2], s[0], s[1]) if len(s) == 3 else s)) for s in shapes]
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(shapes):
        raise PairError(
            f"--torch {ref!r}: forward takes {len(placeholders)} input(s) but {len(shapes)} "
            "--input-shape were given"
        )
    for node, example in zip(placeholders, examples, strict=True):
        if _embeds(traced, node):
            example.data = torch.zeros(example.shape, dtype=torch.long)
    try:
        with torch.no_grad():
            ShapeProp(traced).propagate(*examples)
    except Exception as exc:
        shown = [list(e.shape) for e in examples]
        raise user_failure("--torch", ref, f"--torch model failed on inputs of shape {shown}:", exc) from exc
    return Walker(traced, Builder("--torch", ref), shapes).walk(name)


def _embeds(traced: fx.GraphModule, node: fx.Node) -> bool:
    return any(
        u.op == "call_module" and isinstance(traced.get_submodule(str(u.target)), nn.Embedding)
        for u in node.users
    )


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class Walker:
    def __init__(self, traced: fx.GraphModule, builder: Builder, shapes: list[tuple[int, ...]]) -> None:
        self.traced = traced
        self.b = builder
        self.shapes = shapes
        self.values: dict[fx.Node, Value] = {}
        self.seq_used: set[str] = set()  # recurrent layers whose every step some layer reads

    def walk(self, model_name: str) -> dict[str, Any]:
        output: str | None = None
        out_shape: tuple[int, ...] = ()
        inputs = iter(self.shapes)
        for node in self.traced.graph.nodes:
            if node.op == "placeholder":
                shape = next(inputs)
                self.values[node] = Value(self.b.add_input(node.name, shape), "tensor", self._shape(node))
            elif node.op == "output":
                value = self._arg(node.args[0])
                if value is not None and value.kind == "tensor" and value.name:
                    output, out_shape = value.name, value.shape[1:]
                elif value is None or value.kind != "blocked":
                    self.b.refuse("a model output that is not one tensor", node.name)
            elif node.op == "get_attr":
                self.values[node] = Value(kind="other")
                if isinstance(getattr(self.traced, "_parameters", {}).get(str(node.target)), nn.Parameter):
                    self.b.refuse("a parameter used directly in forward", str(node.target))
            else:
                # After an unsupported op, what depends on it is blocked, not listed again.
                self.values[node] = self._visit(node) or Value(kind="blocked")
        if out_shape and len(out_shape) == 3:
            c, h, w = out_shape
            out_shape = (h, w, c)
        return self.b.finish(model_name, output, out_shape)

    # --- helpers -----------------------------------------------------------------------------

    def _shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if isinstance(meta, TensorMetadata) else ()

    def _arg(self, arg: Any) -> Value | None:
        return self.values.get(arg) if isinstance(arg, fx.Node) else None

    def _tensor(self, node: fx.Node, arg: Any, op: str) -> str | None:
        """The spec name a layer reads from `arg`, or None (and the op refused) when it is no plain tensor."""
        value = self._arg(arg)
        if value is not None and value.kind == "blocked":
            return None
        if value is not None and value.kind == "rnn_seq":
            layer = self.b.layer(value.name)
            if not layer["return_sequences"]:
                self.b.refuse(
                    op, node.name, "reads every step of a recurrent layer whose last step is also used"
                )
                return None
            self.seq_used.add(value.name)
            return value.name
        if value is None or value.kind != "tensor":
            kind = value.kind if value else "a constant"
            self.b.refuse(op, node.name, f"its input is {kind}, not a tensor bakeoff can follow")
            return None
        return value.name

    def _out(self, name: str | None, node: fx.Node, kind: str = "tensor") -> Value | None:
        return Value(name, kind, self._shape(node)) if name else None

    def _activation(self, node: fx.Node, fn: str, x: Any, where: str, op: str) -> Value | None:
        source = self._tensor(node, x, op)
        return self._out(source and self.b.add(where, "activation", [source], fn=fn), node)

    def _flatten(self, node: fx.Node, x: Any, op: str) -> Value | None:
        value = self._arg(x)
        if value is not None and value.kind == "pooled":
            # AdaptiveAvgPool2d(1) then flatten is a global average pool.
            return self._out(self.b.add(node.name, "global_avg_pool", [value.name]), node)
        source = self._tensor(node, x, op)
        if source is None or value is None:
            return None
        if len(value.shape) == 2:
            return Value(source, "tensor", value.shape)  # already one vector per sample
        return self._out(self.b.add(node.name, "flatten", [source]), node)

    # --- nodes ---------------------------------------------------------------------------------

    def _visit(self, node: fx.Node) -> Value | None:
        if node.op == "call_module":
            module = self.traced.get_submodule(str(node.target))
            return self._module(node, module, str(node.target))
        if node.op == "call_function":
            return self._function(node)
        return self._method(node)

    def _module(self, node: fx.Node, m: nn.Module, where: str) -> Value | None:
        op = torch_name(type(m))
        x = node.args[0] if node.args else None
        in_shape = (self._arg(x) or Value()).shape
        if type(m) not in KNOWN_MODULES:
            # Listed even behind another unsupported op: the user should see everything at once.
            self.b.refuse(op, where)
            return None
        if isinstance(m, nn.Identity):
            return self._arg(x)
        if type(m) in ACTIVATION_MODULES:
            return self._activation(node, ACTIVATION_MODULES[type(m)], x, where, op)
        if isinstance(m, nn.GELU):
            fn = "gelu_tanh" if m.approximate == "tanh" else "gelu"
            return self._activation(node, fn, x, where, op)
        if isinstance(m, nn.Softmax):
            return self._softmax(node, m.dim, x, where, op)
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                self.b.refuse(op, where, f"start_dim={m.start_dim}, end_dim={m.end_dim}; only 1, -1")
                return None
            return self._flatten(node, x, op)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            if _pair(m.output_size) != (1, 1):
                self.b.refuse(op, where, f"output_size={m.output_size}; only 1 (a global average)")
                return None
            source = self._tensor(node, x, op)
            return self._out(source, node, "pooled")
        source = self._tensor(node, x, op)
        if source is None:
            return None
        fields = self._layer_fields(m, where, in_shape)
        if fields is None:
            return None
        kind = fields.pop("type")
        name = self.b.add(where, kind, [source], **fields)
        if isinstance(m, nn.LSTM | nn.GRU):
            return self._out(name, node, "rnn")
        if isinstance(m, nn.MultiheadAttention):
            q, k, v = (node.args + tuple(node.kwargs.values()))[:3]
            if not (q is k is v):
                self.b.refuse(op, where, "query, key and value differ; a spec holds self-attention only")
            return self._out(name, node, "mha")
        return self._out(name, node)

    def _layer_fields(self, m: nn.Module, where: str, shape: tuple[int, ...]) -> dict[str, Any] | None:
        op = torch_name(type(m))
        refuse = self.b.refuse
        if isinstance(m, nn.Linear):
            return {"type": "dense", "units": m.out_features, "use_bias": m.bias is not None}
        if isinstance(m, nn.Conv2d):
            padding = self._padding(m.padding, m.kernel_size, m.stride, shape)
            if m.dilation != (1, 1) or m.padding_mode != "zeros" or padding is None:
                why = f"padding={m.padding}, stride={m.stride}, dilation={m.dilation}, mode {m.padding_mode}"
                refuse(op, where, why + "; bakeoff maps padding 0, 'same' or Keras' 'same' amounts")
                return None
            return {
                "type": "conv2d",
                "filters": m.out_channels,
                "kernel_size": list(m.kernel_size),
                "strides": list(m.stride),
                "padding": padding,
                "groups": m.groups,
                "use_bias": m.bias is not None,
            }
        if isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
            return self._pool(op, where, m, shape)
        if isinstance(m, nn.Dropout) and type(m) is nn.Dropout:
            return {"type": "dropout", "rate": float(m.p)}
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            if not m.affine or not m.track_running_stats or m.momentum is None or len(shape) == 3:
                refuse(op, where, "needs affine, running statistics, a momentum, and a vector or an image")
                return None
            return {"type": "batch_norm", "epsilon": float(m.eps), "momentum": 1.0 - float(m.momentum)}
        if isinstance(m, nn.LayerNorm):
            last_only = len(m.normalized_shape) == 1 and len(shape) in (2, 3)
            if not last_only or not m.elementwise_affine or getattr(m, "bias", True) is None:
                refuse(op, where, "only over the last axis of a vector or a sequence, with weight and bias")
                return None
            return {"type": "layer_norm", "epsilon": float(m.eps)}
        if isinstance(m, nn.Embedding):
            if m.padding_idx is not None or m.max_norm is not None:
                refuse(op, where, "padding_idx and max_norm have no Keras twin")
                return None
            return {"type": "embedding", "vocab_size": m.num_embeddings, "dim": m.embedding_dim}
        if isinstance(m, nn.LSTM | nn.GRU):
            plain = m.batch_first and m.num_layers == 1 and not m.bidirectional and m.bias
            if not plain or getattr(m, "proj_size", False):
                refuse(op, where, "a spec holds one batch_first, one-way layer with biases")
                return None
            kind = "lstm" if isinstance(m, nn.LSTM) else "gru"
            return {"type": kind, "units": m.hidden_size, "return_sequences": True}
        if isinstance(m, nn.MultiheadAttention):
            plain = m.batch_first and m.in_proj_bias is not None and m.bias_k is None
            if not plain or not m._qkv_same_embed_dim:
                refuse(op, where, "a spec holds batch_first self-attention with biases")
                return None
            return {"type": "attention", "heads": m.num_heads}
        refuse(op, where)
        return None

    def _padding(self, padding: Any, kernel: Any, stride: Any, shape: tuple[int, ...]) -> str | None:
        """'valid' or 'same' when torch's padding pads as Keras' does on this input, else None."""
        if padding in ("same", "valid"):
            return str(padding)
        pads = _pair(padding)
        if pads == (0, 0):
            return "valid"
        (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
        same = (same_padding(shape[-2], kh, sh), same_padding(shape[-1], kw, sw))
        return "same" if same == ((pads[0], pads[0]), (pads[1], pads[1])) else None

    def _pool(self, op: str, where: str, m: Any, shape: tuple[int, ...]) -> dict[str, Any] | None:
        kind = "max_pool2d" if isinstance(m, nn.MaxPool2d) else "avg_pool2d"
        return self._pool_fields(op, where, kind, m.kernel_size, m.stride, m.padding, m, shape)

    def _pool_fields(
        self, op: str, where: str, kind: str, kernel: Any, stride: Any, padding: Any, m: Any, shape: Any
    ) -> dict[str, Any] | None:
        stride = stride or kernel  # None or an empty tuple: the kernel, as both frameworks default
        pad = self._padding(padding, kernel, stride, shape)
        odd = (
            getattr(m, "ceil_mode", False)
            or _pair(getattr(m, "dilation", 1)) != (1, 1)
            or getattr(m, "return_indices", False)
            or getattr(m, "divisor_override", None) is not None
            # Keras averages over real cells only; torch counts padding unless told not to.
            or (
                kind == "avg_pool2d"
                and pad == "same"
                and _pair(padding) != (0, 0)
                and getattr(m, "count_include_pad", True)
            )
        )
        if pad is None or odd:
            self.b.refuse(op, where, f"kernel {kernel}, stride {stride}, padding {padding} has no Keras twin")
            return None
        return {
            "type": kind,
            "pool_size": list(_pair(kernel)),
            "strides": list(_pair(stride)),
            "padding": pad,
        }

    def _softmax(self, node: fx.Node, dim: Any, x: Any, where: str, op: str) -> Value | None:
        rank = len((self._arg(x) or Value()).shape)
        # The spec's softmax runs over features (channels of an image): the last axis in Keras.
        if dim not in ((1, -3) if rank == 4 else (-1, rank - 1)):
            self.b.refuse(op, where, f"dim={dim}; bakeoff maps softmax over features or channels only")
            return None
        return self._activation(node, "softmax", x, where, op)

    def _function(self, node: fx.Node) -> Value | None:
        fn, args, kwargs = node.target, node.args, node.kwargs
        op = f"{getattr(fn, '__module__', '') or 'builtins'}.{getattr(fn, '__name__', fn)}"
        op = op.replace("torch.nn.functional", "F").replace("_operator.", "operator.")
        x = args[0] if args else kwargs.get("input")
        if fn in ACTIVATION_FUNCTIONS:
            return self._activation(node, ACTIVATION_FUNCTIONS[fn], x, node.name, op)
        if fn is F.gelu:
            tanh = kwargs.get("approximate", args[1] if len(args) > 1 else "none") == "tanh"
            return self._activation(node, "gelu_tanh" if tanh else "gelu", x, node.name, op)
        if fn in (F.softmax, torch.softmax):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            return self._softmax(node, dim, x, node.name, op)
        if fn in (F.max_pool2d, F.avg_pool2d):
            return self._functional_pool(node, fn, op)
        if fn is F.dropout:
            p: Any = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            source = self._tensor(node, x, op)
            return self._out(source and self.b.add(node.name, "dropout", [source], rate=float(p)), node)
        if fn is F.adaptive_avg_pool2d:
            size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
            if size is None or _pair(size) != (1, 1):
                self.b.refuse(op, node.name, f"output_size={size}; only 1 (a global average)")
                return None
            return self._out(self._tensor(node, x, op), node, "pooled")
        if fn in FLATTENS:
            start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
            if start != 1 or end != -1:
                self.b.refuse(op, node.name, f"start_dim={start}, end_dim={end}; only 1, -1")
                return None
            return self._flatten(node, x, op)
        if fn in ADDS:
            return self._merge(node, "add", list(args[:2]), op)
        if fn is torch.cat:
            listed: Any = args[0] if args else kwargs["tensors"]
            tensors = list(listed)
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            rank = len(self._shape(node))
            if dim not in ((1,) if rank == 4 else (-1, rank - 1)):
                self.b.refuse(op, node.name, f"dim={dim}; bakeoff concatenates features or channels only")
                return None
            return self._merge(node, "concat", tensors, op)
        if fn is operator.getitem:
            return self._getitem(node, op)
        if fn is getattr or not isinstance(node.meta.get("tensor_meta"), TensorMetadata):
            return Value(kind="other")  # sizes and shapes, read only to reshape
        self.b.refuse(op, node.name)
        return None

    def _functional_pool(self, node: fx.Node, fn: Any, op: str) -> Value | None:
        names = ("input", "kernel_size", "stride", "padding")
        given = dict(zip(names, node.args, strict=False)) | dict(node.kwargs)
        extra = dict(zip(("dilation", "ceil_mode", "return_indices"), node.args[4:], strict=False))
        if fn is F.avg_pool2d:
            extra = dict(
                zip(("ceil_mode", "count_include_pad", "divisor_override"), node.args[4:], strict=False)
            )
        settings = type("Settings", (), {**extra, **{k: v for k, v in node.kwargs.items() if k not in names}})
        kind = "max_pool2d" if fn is F.max_pool2d else "avg_pool2d"
        shape = (self._arg(given["input"]) or Value()).shape
        source = self._tensor(node, given["input"], op)
        if source is None:
            return None
        fields = self._pool_fields(
            op,
            node.name,
            kind,
            given["kernel_size"],
            given.get("stride"),
            given.get("padding", 0),
            settings,
            shape,
        )
        if fields is None:
            return None
        kind = fields.pop("type")
        return self._out(self.b.add(node.name, kind, [source], **fields), node)

    def _merge(self, node: fx.Node, kind: str, args: list[Any], op: str) -> Value | None:
        sources = [self._tensor(node, a, op) for a in args]
        if len(sources) < 2 or None in sources:
            return None
        return self._out(self.b.add(node.name, kind, [s for s in sources if s]), node)

    def _getitem(self, node: fx.Node, op: str) -> Value | None:
        value, index = self._arg(node.args[0]), node.args[1]
        if not node.users:
            return Value(kind="other")  # `out, _ = lstm(x)` unpacks the states nobody reads
        if value is None or value.kind in ("other", "blocked"):
            return value or Value(kind="other")
        if value.kind in ("rnn", "mha") and index == 0:
            return Value(value.name, "rnn_seq" if value.kind == "rnn" else "tensor", self._shape(node))
        last = (slice(None), -1)
        if value.kind == "rnn_seq" and index in (last, (slice(None, None, None), -1, slice(None))):
            layer = self.b.layer(value.name)
            if value.name in self.seq_used:
                self.b.refuse(
                    op, node.name, "reads the last step of a recurrent layer whose every step is also used"
                )
                return None
            layer["return_sequences"] = False
            return Value(value.name, "tensor", self._shape(node))
        self.b.refuse(
            f"indexing [{index}]", node.name, "bakeoff follows [0] of a recurrent layer and [:, -1]"
        )
        return None

    def _method(self, node: fx.Node) -> Value | None:
        method, args = str(node.target), node.args
        op = f"Tensor.{method}"
        x = args[0]
        if method in ACTIVATION_METHODS:
            return self._activation(node, ACTIVATION_METHODS[method], x, node.name, op)
        if method == "softmax":
            return self._softmax(
                node, node.kwargs.get("dim", args[1] if len(args) > 1 else None), x, node.name, op
            )
        if method in RESHAPES:
            value = self._arg(x)
            if value is not None and value.kind == "blocked":
                return None
            shape = self._shape(node)
            source_shape = value.shape if value else ()
            if len(shape) == 2 and source_shape and shape[1] == math.prod(source_shape[1:]):
                return self._flatten(node, x, op)
            self.b.refuse(op, node.name, f"to {list(shape)}; bakeoff follows a flatten to (batch, features)")
            return None
        if method in ("add", "add_"):
            return self._merge(node, "add", list(args[:2]), op)
        if method == "mean":
            dims = node.kwargs.get("dim", args[1] if len(args) > 1 else None)
            value = self._arg(x)
            rank = len(value.shape) if value else 0
            wanted = {(2, 3), (-2, -1), (3, 2), (-1, -2)} if rank == 4 else {(1,), (-2,)}
            dims = tuple(dims) if isinstance(dims, list | tuple) else (dims,)
            if rank in (3, 4) and dims in wanted and not node.kwargs.get("keepdim", False):
                source = self._tensor(node, x, op)
                return self._out(source and self.b.add(node.name, "global_avg_pool", [source]), node)
        if method in ("size", "dim") or not isinstance(node.meta.get("tensor_meta"), TensorMetadata):
            return Value(kind="other")
        if method == "contiguous":
            return self._arg(x)
        self.b.refuse(op, node.name)
        return None
