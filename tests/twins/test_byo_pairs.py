"""Hand-written pairs (tests/fixtures/pairs/) through real workers: the ones that match pass, the ones
that differ in a framework default or in padding fail and say why, and pass with the offered fix.

All pairs of a fixture share one worker per framework, as `check_pairs` runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakeoff.errors import PairError
from bakeoff.twins.parity import Pair, ParityResult, check_pairs

pytestmark = pytest.mark.slow

PAIRS = Path(__file__).parents[1] / "fixtures" / "pairs"
SHAPES = {
    "LeNet": (28, 28, 1),
    "TabularNet": (20,),
    "GeluMLP": (16,),
    "StridedConv": (32, 32, 3),
    "GRUClassifier": (10, 8),
    "LSTMRegressor": (10, 8),
    "TinyEncoder": (12,),
}
PLAIN = [
    ("LeNet", "lenet"),
    ("TabularNet", "tabular_net"),
    ("GeluMLP", "gelu_mlp"),
    ("StridedConv", "strided_conv"),
    ("StridedConv", "strided_conv_padded"),
    ("GRUClassifier", "gru_classifier"),
    ("LSTMRegressor", "lstm_regressor"),
    ("TinyEncoder", "tiny_encoder"),
]
MATCHED = [("TabularNet", "tabular_net"), ("GeluMLP", "gelu_mlp")]


def _pair(torch_name: str, keras_name: str, match_defaults: bool = False) -> Pair:
    return Pair(
        f"{PAIRS / 'torch_models.py'}:{torch_name}",
        f"{PAIRS / 'keras_models.py'}:{keras_name}",
        [SHAPES[torch_name]],
        match_defaults,
    )


Results = dict[tuple[str, str], ParityResult | PairError]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Results, Path]:
    """(plain results, results with --match-defaults, the errors folder): one check_pairs call."""
    errors = tmp_path_factory.mktemp("byo-errors")
    raising = Pair(
        f"{PAIRS.parent / 'seed_torch.py'}:SimpleNet",
        f"{PAIRS.parent / 'keras_models.py'}:RaisesInCall",
        [(784,)],
    )
    pairs = [*(_pair(*p) for p in PLAIN), *(_pair(*p, match_defaults=True) for p in MATCHED), raising]
    results = check_pairs(pairs, errors_dir=errors)
    plain = dict(zip(PLAIN, results, strict=False))
    plain[("SimpleNet", "RaisesInCall")] = results[-1]
    return plain, dict(zip(MATCHED, results[len(PLAIN) : -1], strict=True)), errors


@pytest.fixture
def plain(checked: tuple[Results, Results, Path]) -> tuple[Results, Path]:
    return checked[0], checked[2]


@pytest.fixture
def matched(checked: tuple[Results, Results, Path]) -> Results:
    return checked[1]


def _result(results: Results, key: tuple[str, str]) -> ParityResult:
    result = results[key]
    assert isinstance(result, ParityResult), result
    return result


@pytest.mark.parametrize(
    "key",
    [
        ("LeNet", "lenet"),
        ("StridedConv", "strided_conv_padded"),
        ("GRUClassifier", "gru_classifier"),
        ("LSTMRegressor", "lstm_regressor"),
        ("TinyEncoder", "tiny_encoder"),
    ],
)
def test_matching_pairs_pass(plain: tuple[Results, Path], key: tuple[str, str]) -> None:
    result = _result(plain[0], key)
    assert result.passed, result.summary()
    assert result.output_max_abs <= 1e-5
    assert result.gradients and all(d.ok for d in result.gradients)
    extra = 2 * 4 * 16 if key[0] == "LSTMRegressor" else 0  # torch's second bias, in each of 2 layers
    assert result.params["torch"] == result.params["keras"] + extra
    assert not result.causes


def test_lenet_flatten_order_is_found_from_functional_pooling_and_view(plain: tuple[Results, Path]) -> None:
    result = _result(plain[0], ("LeNet", "lenet"))
    fc1 = next(d for d in result.layers if d.layer.startswith("fc1"))
    assert fc1.max_abs <= 1e-5  # the kernel rows were permuted from C,H,W to H,W,C order
    assert result.frameworks["torch"]["layers"][2]["flatten_from"] == [5, 5, 16]


def test_recurrent_layers_map_every_stacked_layer_and_direction(plain: tuple[Results, Path]) -> None:
    gru = _result(plain[0], ("GRUClassifier", "gru_classifier"))
    assert [d.layer for d in gru.layers][:2] == ["gru[0] ↔ bidirectional", "gru[1] ↔ bidirectional_1"]
    assert {d.key for d in gru.gradients if d.layer.startswith("gru[1]")} >= {"kernel", "kernel_reverse"}
    lstm = _result(plain[0], ("LSTMRegressor", "lstm_regressor"))
    assert lstm.layers[1].max_abs <= 1e-5  # the last step of torch's sequence against Keras' output
    assert any("two bias vectors (b_ih, b_hh)" in note for note in lstm.notes)


def test_token_ids_reach_an_embedding_first_model(plain: tuple[Results, Path]) -> None:
    result = _result(plain[0], ("TinyEncoder", "tiny_encoder"))
    assert any("token ids in [0, 100)" in note for note in result.notes)
    assert [d.kind for d in result.layers][:2] == ["embedding", "attention"]


def test_batch_norm_defaults_fail_naming_both_epsilons_then_pass_matched(
    plain: tuple[Results, Path], matched: Results
) -> None:
    result = _result(plain[0], ("TabularNet", "tabular_net"))
    assert not result.passed
    assert result.first_divergent == "net.1 ↔ batch_normalization"
    (cause,) = result.causes
    assert cause.layer == result.first_divergent
    assert "BatchNorm epsilon differs: torch 1e-05" in cause.text and "Keras 0.001" in cause.text
    assert "momentum differs too" in cause.text and "momentum=0.9, Keras has 0.99" in cause.text
    assert cause.flag == "--match-defaults"
    assert "BatchNormalization(epsilon=1e-05, momentum=0.9)" in cause.fix
    assert "epsilon differs" in result.summary()

    fixed = _result(matched, ("TabularNet", "tabular_net"))
    assert fixed.passed, fixed.summary()
    assert any("epsilon 0.001 → 1e-05" in note for note in fixed.notes)
    assert any("momentum 0.99 → 0.9" in note for note in fixed.notes)


def test_gelu_approximation_is_blamed_on_the_activation_then_passes_matched(
    plain: tuple[Results, Path], matched: Results
) -> None:
    result = _result(plain[0], ("GeluMLP", "gelu_mlp"))
    assert not result.passed
    assert result.first_divergent == "after fc1 ↔ dense"  # not fc2, which only receives the difference
    assert result.layers[0].ok and result.layers[1].kind == "gelu(tanh) ↔ gelu(exact)"
    (cause,) = result.causes
    assert "GELU differs: torch's is the tanh approximation" in cause.text
    assert "Keras' is the exact erf form" in cause.text
    assert cause.flag == "--match-defaults"

    fixed = _result(matched, ("GeluMLP", "gelu_mlp"))
    assert fixed.passed, fixed.summary()
    assert any("gelu set to torch's tanh approximation" in note for note in fixed.notes)


def test_stride_two_same_padding_names_the_placement_and_the_written_fix_passes(
    plain: tuple[Results, Path],
) -> None:
    result = _result(plain[0], ("StridedConv", "strided_conv"))
    assert not result.passed
    assert result.first_divergent == "conv ↔ conv2d"
    (cause,) = result.causes
    assert "torch pads 1 before and after (padding=1)" in cause.text
    assert "pads 0 before and 1 after on this 32×32 input" in cause.text
    assert "ZeroPadding2D(1)" in cause.fix and cause.flag is None
    # The fix in words, written out (keras_models.strided_conv_padded), passes:
    assert _result(plain[0], ("StridedConv", "strided_conv_padded")).passed


def test_an_error_in_users_code_is_one_line_with_the_traceback_in_a_file(plain: tuple[Results, Path]) -> None:
    results, errors = plain
    error = results[("SimpleNet", "RaisesInCall")]
    assert isinstance(error, PairError)
    message = str(error)
    assert "\n" not in message and "\x1b" not in message
    assert "this model refuses every batch (at keras_models.py:" in message
    (saved,) = errors.iterdir()
    assert f"(full text: {saved})" in message
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "keras_models.py" in text and "\x1b" not in text
