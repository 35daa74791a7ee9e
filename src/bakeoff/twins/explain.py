"""Why a pair diverges, in words, with the fix: the settings the two frameworks default differently
(norm epsilon and momentum, GELU's approximation), padding placement, padded average pooling,
batch-first recurrent and attention layers, and randomness left on in inference.

Reads only the layer descriptions both workers return (settings, and the ops run between weight
layers), so it runs in the parent and in the Keras worker (which applies `--match-defaults`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Layer = dict[str, Any]

MATCH_FLAG = "--match-defaults"


@dataclass(frozen=True)
class Cause:
    """A likely cause of a divergence: `layer` is the row it explains; `flag` reruns with the fix."""

    layer: str
    text: str
    fix: str
    flag: str | None = None


@dataclass(frozen=True)
class Setting:
    """One framework-dependent setting two ports of a layer disagree on; `attribute` is Keras' name
    for it and `torch_as_keras` torch's value in Keras' convention."""

    name: str
    attribute: str
    torch_value: float
    keras_value: float
    torch_as_keras: float
    affects_parity: bool

    @property
    def change(self) -> str:
        return f"{self.attribute} {self.keras_value:g} → {self.torch_as_keras:g}"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def setting_differences(t: Layer, k: Layer) -> list[Setting]:
    ts, ks = t.get("settings", {}), k.get("settings", {})
    found = []
    if t["kind"] in ("batch_norm", "layer_norm"):
        eps, epsilon = _num(ts.get("eps")), _num(ks.get("epsilon"))
        if eps is not None and epsilon is not None and not math.isclose(eps, epsilon, rel_tol=1e-6):
            found.append(Setting("epsilon", "epsilon", eps, epsilon, eps, True))
    if t["kind"] == "batch_norm":
        # torch weighs the new batch by `momentum`, Keras the running value: torch 0.1 is Keras 0.9.
        momentum, keras_momentum = _num(ts.get("momentum")), _num(ks.get("momentum"))
        if momentum is None or keras_momentum is None:  # torch's None: a cumulative average
            return found
        if not math.isclose(1 - momentum, keras_momentum, rel_tol=1e-6):
            found.append(Setting("momentum", "momentum", momentum, keras_momentum, 1 - momentum, False))
    return found


def gelu_of(ops: list[dict[str, Any]]) -> bool | None:
    """Whether the first GELU among `ops` is the tanh approximation; None when there is no GELU."""
    for op in ops:
        if op.get("op") == "gelu":
            value = op.get("approximate", False)
            return value == "tanh" if isinstance(value, str) else bool(value)
    return None


def shape_hint(kind: str, keras_settings: dict[str, Any]) -> str:
    """Why weights that map cleanly still do not fit a Keras layer, when a setting explains it."""
    if kind == "gru" and keras_settings.get("reset_after") is False:
        return (
            "Keras GRU(reset_after=False) has one bias row; torch's GRU applies the reset gate after "
            "the recurrent product, which is Keras' reset_after=True (the default): drop reset_after=False"
        )
    return ""


def ops_text(ops: list[dict[str, Any]]) -> str:
    names = []
    for op in ops:
        name = op["op"]
        if name == "gelu":
            name += "(tanh)" if gelu_of([op]) else "(exact)"
        names.append(name)
    return ", ".join(names) or "nothing"


def _norm_cause(row: str, t: Layer, settings: list[Setting]) -> Cause | None:
    eps = next((s for s in settings if s.name == "epsilon"), None)
    if eps is None:
        return None
    torch_class = t.get("class", "BatchNorm")
    keras_class = "BatchNormalization" if t["kind"] == "batch_norm" else "LayerNormalization"
    text = (
        f"{'BatchNorm' if t['kind'] == 'batch_norm' else 'LayerNorm'} epsilon differs: torch "
        f"{eps.torch_value:g} ({_default(torch_class, eps.torch_value, 1e-5)}), Keras "
        f"{eps.keras_value:g} ({_default(keras_class, eps.keras_value, 1e-3)})"
    )
    args = f"epsilon={eps.torch_value:g}"
    momentum = next((s for s in settings if s.name == "momentum"), None)
    if momentum is not None:
        text += (
            f"; momentum differs too: torch {momentum.torch_value:g} (the new batch's weight) is Keras "
            f"momentum={momentum.torch_as_keras:g}, Keras has {momentum.keras_value:g}"
        )
        args += f", momentum={momentum.torch_as_keras:g}"
    fix = (
        f"rerun with {MATCH_FLAG} to give the Keras layer torch's settings for the check; to port it "
        f"for good, write {keras_class}({args})"
    )
    return Cause(row, text, fix, MATCH_FLAG)


def _default(owner: str, value: float, default: float) -> str:
    return f"{owner}'s default" if math.isclose(value, default) else f"{owner}'s default is {default:g}"


def _tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding on one axis: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _padding_cause(row: str, t: Layer, k: Layer) -> Cause | None:
    ts, ks = t.get("settings", {}), k.get("settings", {})
    padding, hw = ts.get("padding"), ts.get("in_hw")
    if ks.get("padding") != "same" or not isinstance(padding, list | tuple) or not hw:
        return None
    strides, kernel = ks.get("strides", [1, 1]), ks.get("kernel", [1, 1])
    keras_pads = [_tf_same_pads(n, kk, s) for n, kk, s in zip(hw, kernel, strides, strict=True)]
    if all(before == p and after == p for (before, after), p in zip(keras_pads, padding, strict=True)):
        return None
    (top, bottom), (left, right) = keras_pads
    text = (
        f"padding placement: torch pads {padding[0]} before and after (padding={padding[0]}), Keras "
        f"padding='same' with strides={strides[0]} pads {top} before and {bottom} after on this "
        f"{hw[0]}×{hw[1]} input (TensorFlow puts the odd pixel after), so every window is shifted"
    )
    fix = (
        f"in Keras, write ZeroPadding2D({padding[0]}) before Conv2D(..., strides={strides[0]}, "
        f"padding='valid'); or in torch, nn.ZeroPad2d(({left}, {right}, {top}, {bottom})) before a "
        "conv with padding=0"
    )
    return Cause(row, text, fix)


def _layer_cause(row: str, t: Layer, k: Layer) -> Cause | None:
    kind, ts, ks = t["kind"], t.get("settings", {}), k.get("settings", {})
    if kind in ("batch_norm", "layer_norm"):
        return _norm_cause(row, t, setting_differences(t, k))
    if kind == "conv2d":
        return _padding_cause(row, t, k)
    if kind in ("lstm", "gru", "attention") and ts.get("batch_first") is False:
        return Cause(
            row,
            f"torch {t['class']} '{t['name']}' has batch_first=False: it reads the (batch, time, "
            "features) input as (time, batch, features); Keras always reads batch first",
            f"write {t['class']}(..., batch_first=True)",
        )
    if kind in ("lstm", "gru"):
        wrong = {
            key: value
            for key, value, want in (
                ("activation", ks.get("activation"), "tanh"),
                ("recurrent_activation", ks.get("recurrent_activation"), "sigmoid"),
            )
            if value not in (None, want)
        }
        if wrong:
            listed = ", ".join(f"{key}='{value}'" for key, value in wrong.items())
            return Cause(
                row,
                f"Keras {k['class']} has {listed}; torch's {t['class']} always uses tanh and sigmoid",
                f"drop {listed} from the Keras layer",
            )
        return Cause(
            row,
            f"no setting explains it: the weights were mapped from torch's gate order "
            f"({'i, f, g, o and b_ih + b_hh' if kind == 'lstm' else 'r, z, n'}) to Keras' "
            f"({'i, f, c, o and one bias' if kind == 'lstm' else 'z, r, h with reset_after=True'}), "
            "and the activations agree; check what the two models feed the layer and which output they use",
            "",
        )
    return None


def _between_cause(row: str, torch_ops: list[dict[str, Any]], keras_ops: list[dict[str, Any]]) -> Cause:
    torch_gelu, keras_gelu = gelu_of(torch_ops), gelu_of(keras_ops)
    if torch_gelu is not None and keras_gelu is not None and torch_gelu != keras_gelu:
        forms = {True: "the tanh approximation", False: "the exact erf form"}
        torch_arg = "tanh" if torch_gelu else "none"
        return Cause(
            row,
            f"GELU differs: torch's is {forms[torch_gelu]} (approximate='{torch_arg}'), "
            f"Keras' is {forms[keras_gelu]} (approximate={keras_gelu}); the next layer only receives "
            "the difference",
            f"rerun with {MATCH_FLAG} to use torch's form in Keras for the check; to port it for good, "
            f"use keras.activations.gelu(x, approximate={torch_gelu}) in Keras",
            MATCH_FLAG,
        )
    for op in torch_ops:
        padding = op.get("padding", 0)
        padded = any(padding) if isinstance(padding, list) else bool(padding)
        if op["op"] == "avg_pool2d" and padded and op.get("count_include_pad", True):
            return Cause(
                row,
                "average pooling counts padding: torch's AvgPool2d(padding=...) divides every window "
                "by its full size, zeros included (count_include_pad=True, its default); Keras' "
                "AveragePooling2D divides only by the real pixels",
                "write AvgPool2d(..., count_include_pad=False) in torch",
            )
    return Cause(
        row,
        f"the layers before and after agree, but what runs between them differs: torch runs "
        f"{ops_text(torch_ops)}, Keras runs {ops_text(keras_ops)}",
        "",
    )


def _training_mode_causes(torch_meta: dict[str, Any], keras_meta: dict[str, Any]) -> list[Cause]:
    found = []
    ops = torch_meta.get("before_first", []) + [op for t in torch_meta["layers"] for op in t.get("after", [])]
    if any(op["op"].endswith("dropout") and op.get("training") for op in ops):
        found.append(
            Cause(
                "(model)",
                "torch calls dropout with training=True in eval mode (F.dropout's default), so inference "
                "drops values at random",
                "pass training=self.training to F.dropout, or use an nn.Dropout module",
            )
        )
    elif torch_meta.get("inference_repeats") is False:
        found.append(
            Cause(
                "(model)",
                "the torch model gives two different outputs for one batch in eval mode: something in "
                "it is random at inference (a dropout or noise called in training mode)",
                "",
            )
        )
    if keras_meta.get("inference_repeats") is False:
        found.append(
            Cause(
                "(model)",
                "the Keras model gives two different outputs for one batch with training=False: a "
                "Dropout, noise or BatchNormalization layer runs in training mode (called with "
                "training=True)",
                "call those layers without training=True",
            )
        )
    return found


def causes(
    rows: list[tuple[str, str, int]],
    first: str | None,
    torch_meta: dict[str, Any],
    keras_meta: dict[str, Any],
) -> list[Cause]:
    """Likely causes of the first divergence. `rows` are (row name, 'at' or 'between', layer index)
    in order; a 'between' row is the ops run before the layer at that index."""
    found = _training_mode_causes(torch_meta, keras_meta)
    if first is None:
        return found
    tl, kl = torch_meta["layers"], keras_meta["layers"]
    where = next(((at, i) for name, at, i in rows if name == first), None)
    if where is None:  # only the model output differs: look after the last layer
        where = ("between", len(tl))
    at, index = where
    cause: Cause | None
    if at == "at":
        cause = _layer_cause(first, tl[index], kl[index])
    else:
        torch_ops = tl[index - 1]["after"] if index else torch_meta.get("before_first", [])
        keras_ops = kl[index - 1]["after"] if index else keras_meta.get("before_first", [])
        cause = _between_cause(first, torch_ops, keras_ops)
    return ([cause] if cause else []) + found


def setting_notes(torch_meta: dict[str, Any], keras_meta: dict[str, Any]) -> list[str]:
    """What differs but parity cannot see: BatchNorm momentum (training only), LSTM's extra bias."""
    notes = []
    for t, k in zip(torch_meta["layers"], keras_meta["layers"], strict=True):
        if t["kind"] == "lstm":
            notes.append(
                f"{t['name']} ↔ {k['name']}: torch's LSTM has two bias vectors (b_ih, b_hh) per direction, "
                "Keras' one; bakeoff maps their sum, and torch counts 4 × units more parameters"
            )
        for s in setting_differences(t, k):
            if not s.affects_parity:
                notes.append(
                    f"{t['name']} ↔ {k['name']}: BatchNorm momentum differs (torch {s.torch_value:g} is "
                    f"Keras momentum={s.torch_as_keras:g}, Keras has {s.keras_value:g}); parity cannot "
                    "see it, but training updates the running statistics at different rates; "
                    f"{MATCH_FLAG} sets it for the check"
                )
    return notes
