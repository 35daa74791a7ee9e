"""Parity of the twins, through real torch and Keras worker processes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from bakeoff.spec.graph import build_graph
from bakeoff.spec.load import from_dict, resolve, zoo_names
from bakeoff.twins import parity
from bakeoff.twins.canonical import canonical_weights

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", zoo_names())
def test_zoo_model_parity(name: str) -> None:
    result = parity.check(resolve(name))
    assert result.passed, result.summary()
    assert result.output_max_abs <= 1e-5
    assert max(d.max_abs for d in result.gradients) <= 1e-4
    assert result.params["keras"] == result.params["spec"]
    assert len(result.layers) == len(resolve(name).nodes)


def test_every_remaining_layer_and_padding_case(fixtures: Path) -> None:
    result = parity.check(resolve(str(fixtures / "kitchen_sink.yaml")))
    assert result.passed, [d for d in result.layers + result.gradients if not d.ok]
    assert {d.layer for d in result.gradients} >= {"c1", "c2", "c3", "bn", "e1", "e_bn", "d1", "ln", "out"}


def test_softmax_output_uses_probabilities_in_both_losses() -> None:
    graph = build_graph(
        from_dict(
            {
                "name": "probs",
                "inputs": [{"name": "x", "shape": [6]}],
                "layers": [{"type": "dense", "units": 4, "activation": "softmax"}],
                "task": {"type": "classification", "num_classes": 4},
            }
        )
    )
    result = parity.check(graph)
    assert result.passed, result.summary()
    assert 0.5 < result.loss["torch"] < 5  # a cross-entropy of probabilities, not of logits twice softmaxed


def _rows_as_chw(kernel: np.ndarray, hwc: tuple[int, ...]) -> np.ndarray:
    h, w, c = hwc
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)


def test_broken_flatten_mapping_names_the_first_divergent_layer() -> None:
    """Hand Keras the dense kernel that a mapping forgetting the NCHW/NHWC flatten order would make."""
    graph = resolve("lenet")
    good = canonical_weights(graph)
    broken = {k: dict(v) for k, v in good.items()}
    broken["fc1"]["kernel"] = _rows_as_chw(good["fc1"]["kernel"], (5, 5, 16))
    inputs, target = parity.make_batch(graph, 8, 0)
    with tempfile.TemporaryDirectory() as tmp:
        results = parity.collect(graph, {"torch": good, "keras": broken}, inputs, target, 2, Path(tmp))
    settings = {"atol": 1e-5, "grad_atol": 1e-4}
    layers = [(n.name, n.name, n.type) for n in graph.nodes]
    result = parity.compare("lenet", layers, "act/logits", results["torch"], results["keras"], settings, {})
    assert not result.passed
    assert result.first_divergent == "fc1"
    assert [d.ok for d in result.layers[:5]] == [True] * 5  # everything before fc1 still agrees
    assert "first divergent layer 'fc1'" in result.summary()


def test_lstm_bias_split_is_caught_when_wrong() -> None:
    """Doubling the LSTM bias on one side (the b_ih + b_hh trap) must show at the lstm layer."""
    graph = resolve("lstm-tiny")
    good = canonical_weights(graph)
    broken = {k: dict(v) for k, v in good.items()}
    broken["lstm"]["bias"] = 2 * good["lstm"]["bias"]
    inputs, target = parity.make_batch(graph, 4, 0)
    with tempfile.TemporaryDirectory() as tmp:
        results = parity.collect(graph, {"torch": good, "keras": broken}, inputs, target, 2, Path(tmp))
    layers = [(n.name, n.name, n.type) for n in graph.nodes]
    result = parity.compare(
        "lstm-tiny",
        layers,
        "act/logits",
        results["torch"],
        results["keras"],
        {"atol": 1e-5, "grad_atol": 1e-4},
        {},
    )
    assert result.first_divergent == "lstm"
