"""The causes a divergence is explained by, from the layer descriptions the workers return (no workers)."""

from __future__ import annotations

from typing import Any

import pytest

from bakeoff.twins import explain
from bakeoff.twins.layout import read_input_shape


def _layer(
    name: str, kind: str, after: list[dict[str, Any]] | None = None, **settings: Any
) -> dict[str, Any]:
    return {"name": name, "class": name.title(), "kind": kind, "settings": settings, "after": after or []}


def _meta(*layers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"layers": list(layers), "before_first": [], **extra}


def test_layer_norm_epsilon() -> None:
    torch = _meta(_layer("ln", "layer_norm", eps=1e-5))
    keras = _meta(_layer("layer_normalization", "layer_norm", epsilon=1e-3))
    (cause,) = explain.causes([("ln ↔ l", "at", 0)], "ln ↔ l", torch, keras)
    assert cause.text.startswith("LayerNorm epsilon differs: torch 1e-05")
    assert "LayerNormalization(epsilon=1e-05)" in cause.fix and cause.flag == "--match-defaults"


def test_momentum_alone_is_a_note_since_parity_cannot_see_it() -> None:
    torch = _meta(_layer("bn", "batch_norm", eps=1e-3, momentum=0.1))
    keras = _meta(_layer("batch_normalization", "batch_norm", epsilon=1e-3, momentum=0.99))
    assert explain.causes([("bn ↔ b", "at", 0)], None, torch, keras) == []
    (note,) = explain.setting_notes(torch, keras)
    assert "momentum differs (torch 0.1 is Keras momentum=0.9, Keras has 0.99)" in note
    keras["layers"][0]["settings"]["momentum"] = 0.9
    assert explain.setting_notes(torch, keras) == []


def test_average_pooling_that_counts_padding() -> None:
    pool = {"op": "avg_pool2d", "kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": True}
    torch = _meta(_layer("conv", "conv2d", [pool]), _layer("fc", "dense"))
    keras = _meta(
        _layer("conv2d", "conv2d", [{"op": "avg_pool2d", "padding": "same"}]), _layer("dense", "dense")
    )
    (cause,) = explain.causes([("after conv", "between", 1)], "after conv", torch, keras)
    assert "average pooling counts padding" in cause.text and "count_include_pad=False" in cause.fix


@pytest.mark.parametrize("kind", ["lstm", "gru", "attention"])
def test_batch_first_false(kind: str) -> None:
    torch = _meta(_layer("rnn", kind, batch_first=False))
    keras = _meta(_layer("k", kind))
    (cause,) = explain.causes([("rnn ↔ k", "at", 0)], "rnn ↔ k", torch, keras)
    assert "batch_first=False" in cause.text and "batch_first=True" in cause.fix


def test_keras_recurrent_activation_that_torch_cannot_have() -> None:
    torch = _meta(_layer("gru", "gru", batch_first=True))
    keras = _meta(
        _layer("k", "gru", activation="tanh", recurrent_activation="hard_sigmoid", reset_after=True)
    )
    (cause,) = explain.causes([("gru ↔ k", "at", 0)], "gru ↔ k", torch, keras)
    assert "recurrent_activation='hard_sigmoid'" in cause.text


def test_gru_reset_after_false_explains_the_shape_mismatch() -> None:
    assert "reset_after=True (the default)" in explain.shape_hint("gru", {"reset_after": False})
    assert explain.shape_hint("gru", {"reset_after": True}) == ""


def test_dropout_left_in_training_mode_on_either_side() -> None:
    dropout = {"op": "dropout", "p": 0.5, "training": True}
    torch = _meta(_layer("fc", "dense", [dropout]), inference_repeats=False)
    keras = _meta(_layer("dense", "dense"), inference_repeats=False)
    causes = explain.causes([], "(model output)", torch, keras)
    texts = " / ".join(c.text for c in causes)
    assert "torch calls dropout with training=True in eval mode" in texts
    assert "the Keras model gives two different outputs for one batch" in texts


def test_between_layers_without_a_known_cause_names_both_sides() -> None:
    torch = _meta(_layer("fc1", "dense", [{"op": "relu"}]), _layer("fc2", "dense"))
    keras = _meta(_layer("dense", "dense", [{"op": "silu"}]), _layer("dense_1", "dense"))
    (cause,) = explain.causes([("after fc1", "between", 1)], "after fc1", torch, keras)
    assert "torch runs relu, Keras runs silu" in cause.text


@pytest.mark.parametrize(
    ("typed", "shape", "said"),
    [
        ((1, 28, 28), (28, 28, 1), "read as channels-first (C,H,W) as PyTorch takes it"),
        ((3, 32, 32), (32, 32, 3), "torch gets 3,32,32 and Keras 32,32,3"),
        ((28, 28, 1), (28, 28, 1), "read as channels-last (H,W,C)"),
        ((784,), (784,), ""),
        ((10, 8), (10, 8), ""),
    ],
)
def test_input_shape_layout(typed: tuple[int, ...], shape: tuple[int, ...], said: str) -> None:
    got, reading = read_input_shape(typed)
    assert got == shape
    assert said in reading if said else reading == ""
