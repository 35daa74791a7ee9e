"""Shape inference, wiring, parameter and FLOP counts from the spec alone."""

from __future__ import annotations

from typing import Any

import pytest

from bakeoff.errors import SpecError
from bakeoff.spec.flops import count_flops, count_params
from bakeoff.spec.graph import build_graph, same_padding
from bakeoff.spec.load import from_dict, resolve


def graph(
    layers: list[dict[str, Any]], shape: list[int], task: dict[str, Any] | None = None, dtype: str = "float32"
) -> Any:
    return build_graph(
        from_dict(
            {
                "name": "t",
                "inputs": [{"name": "x", "shape": shape, "dtype": dtype}],
                "layers": layers,
                "task": task or {"type": "regression"},
            }
        )
    )


def test_simplenet_is_the_seed_mlp() -> None:
    g = resolve("simplenet")
    assert [n.shape for n in g.nodes] == [(128,), (10,)]
    assert count_params(g) == 784 * 128 + 128 + 128 * 10 + 10 == 101_770
    assert count_flops(g) == 2 * (784 * 128 + 128 * 10)


def test_lenet_dense_after_flatten_knows_image_shape() -> None:
    g = resolve("lenet")
    assert g.node("fc1").flatten_from == (5, 5, 16)
    assert g.node("flatten").flat_image == (5, 5, 16)
    assert g.node("fc2").flatten_from is None


def test_resnet_mini_shapes_and_params() -> None:
    g = resolve("resnet-mini")
    assert g.node("b2_conv1").shape == (14, 14, 32)
    assert g.node("pool").shape == (7, 7, 32)
    # grouped conv: 3*3*(32/4)*32 weights, no bias
    assert dict((n.name, n) for n in g.nodes)["b2_conv2"].in_shape == (14, 14, 32)
    assert count_params(g) == 12_794


def test_lstm_counts_two_torch_biases() -> None:
    g = resolve("lstm-tiny")
    assert count_params(g, "torch") - count_params(g) == 4 * 32


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [
        (28, 3, 2, (0, 1)),  # TensorFlow puts the odd pixel after
        (28, 3, 1, (1, 1)),
        (16, 2, 1, (0, 1)),
        (7, 1, 2, (0, 0)),
    ],
)
def test_same_padding_matches_tensorflow(size: int, kernel: int, stride: int, pads: tuple[int, int]) -> None:
    assert same_padding(size, kernel, stride) == pads


def test_dense_on_image_names_layer_and_shape() -> None:
    with pytest.raises(SpecError, match=r"layer 'fc' \(dense\) cannot take input of shape \[8, 8, 1\]"):
        graph([{"type": "dense", "units": 4, "name": "fc"}], [8, 8, 1])


def test_add_with_different_shapes_names_both() -> None:
    with pytest.raises(SpecError, match=r"'sum' \(add\): input shapes differ: \[\[4\], \[3\]\]"):
        graph(
            [
                {"type": "dense", "units": 4, "name": "a"},
                {"type": "dense", "units": 3, "name": "b", "inputs": ["x"]},
                {"type": "add", "name": "sum", "inputs": ["a", "b"]},
            ],
            [5],
        )


def test_unknown_input_reference() -> None:
    with pytest.raises(SpecError, match="reads 'nope', which is not an input or an earlier layer"):
        graph([{"type": "dense", "units": 4, "inputs": ["nope"]}], [5])


def test_window_too_big() -> None:
    with pytest.raises(SpecError, match="does not fit input of shape"):
        graph([{"type": "conv2d", "filters": 2, "kernel_size": 5}, {"type": "flatten"}], [3, 3, 1])


def test_groups_must_divide_channels() -> None:
    with pytest.raises(SpecError, match="groups=2 must divide input channels 3"):
        graph(
            [{"type": "conv2d", "filters": 4, "kernel_size": 1, "groups": 2}, {"type": "flatten"}], [4, 4, 3]
        )


def test_classification_output_must_match_classes() -> None:
    with pytest.raises(SpecError, match=r"10 classes needs output shape \[10\], but the model outputs \[4\]"):
        graph([{"type": "dense", "units": 4}], [5], {"type": "classification", "num_classes": 10})


def test_norm_after_flattened_image_is_refused() -> None:
    with pytest.raises(SpecError, match="reads a flattened image"):
        graph([{"type": "flatten"}, {"type": "batch_norm"}], [4, 4, 2])


def test_embedding_needs_integer_input() -> None:
    with pytest.raises(SpecError, match="needs an integer input"):
        graph([{"type": "embedding", "vocab_size": 10, "dim": 4}, {"type": "flatten"}], [5])


def test_duplicate_names() -> None:
    with pytest.raises(SpecError, match="name 'a' is used twice"):
        graph([{"type": "dense", "units": 4, "name": "a"}, {"type": "dense", "units": 4, "name": "a"}], [5])
