"""One model is enough: specs derived from models written without bakeoff in mind
(tests/fixtures/single/): a CNN with functional calls, a gelu MLP in Keras, token ids through attention,
residual adds and a GRU; their generated twins proven equal to them by the BYO parity check, and the
ops that block a twin listed one per line with where they occur.

Every model is derived in one call (a worker per framework, side by side), and every twin is checked
in one `check_pairs` call: four worker starts for the whole file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakeoff.errors import PairError
from bakeoff.spec.load import resolve
from bakeoff.twins.derive import Derived, Wanted, derive_many
from bakeoff.twins.parity import ParityResult, check_pairs

pytestmark = pytest.mark.slow

SINGLE = Path(__file__).parents[1] / "fixtures" / "single"
TORCH, KERAS = SINGLE / "torch_models.py", SINGLE / "keras_models.py"
MODELS = {
    "Net": (f"{TORCH}:Net", "torch", [(28, 28, 1)]),
    "Blocked": (f"{TORCH}:Blocked", "torch", [(28, 28, 1)]),
    "Branchy": (f"{TORCH}:Branchy", "torch", [(8,)]),
    "Encoder": (f"{TORCH}:Encoder", "torch", [(12,)]),
    "gelu_mlp": (f"{KERAS}:gelu_mlp", "keras", [(20,)]),
    "blocked": (f"{KERAS}:blocked", "keras", [(8, 8, 1)]),
}
Outcome = Derived | PairError


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    out = tmp_path_factory.mktemp("derived")
    wanted = [Wanted(ref, fw, shapes, out / name) for name, (ref, fw, shapes) in MODELS.items()]
    return dict(zip(MODELS, derive_many(wanted, threads=1), strict=True))


@pytest.fixture(scope="module")
def checked(derived: dict[str, Outcome]) -> dict[str, ParityResult | PairError]:
    names = ["Net", "gelu_mlp", "Encoder"]
    pairs = []
    for name in names:
        one = derived[name]
        assert isinstance(one, Derived), one
        pairs.append(one.pair(MODELS[name][2]))
    return dict(zip(names, check_pairs(pairs), strict=True))


def _derived(derived: dict[str, Outcome], name: str) -> Derived:
    one = derived[name]
    assert isinstance(one, Derived), one
    return one


def test_torch_cnn_with_functional_calls_derives_the_spec_it_computes(derived: dict[str, Outcome]) -> None:
    net = _derived(derived, "Net")
    layers = [(n.name, n.type) for n in net.graph.nodes]
    assert layers[:4] == [
        ("conv1", "conv2d"),
        ("bn1", "batch_norm"),
        ("relu", "activation"),
        ("max_pool2d", "max_pool2d"),
    ]
    assert ("flatten", "flatten") in layers and ("dropout", "dropout") in layers
    conv1, bn1 = net.graph.node("conv1").layer, net.graph.node("bn1").layer
    assert conv1.padding == "same"  # padding=1 on a 3x3 kernel, stride 1: Keras' 'same'
    assert (bn1.epsilon, bn1.momentum) == (1e-5, pytest.approx(0.9))  # torch's, in the spec's convention
    assert net.graph.inputs[0].shape == (28, 28, 1)
    assert net.graph.spec.task.num_classes == 10
    # What it writes runs again as a spec, and the twin is plain Keras code.
    assert resolve(str(net.spec_path)).spec == net.graph.spec
    code = net.twin_path.read_text()
    assert (
        "keras.Sequential(" in code
        and 'layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn1")' in code
    )


def test_keras_mlp_derives_gelu_layer_norm_and_dropout(derived: dict[str, Outcome]) -> None:
    mlp = _derived(derived, "gelu_mlp")
    types = [n.type for n in mlp.graph.nodes]
    assert types == ["dense", "activation", "layer_norm", "dropout", "dense", "activation", "dense"]
    assert mlp.graph.node("dense_act").layer.fn == "gelu"  # Dense(activation="gelu") is exact gelu
    assert mlp.graph.node("layer_normalization").layer.epsilon == 1e-3  # Keras' default, kept
    assert "nn.LayerNorm(32, eps=0.001)" in mlp.twin_path.read_text()


def test_tokens_attention_residual_and_recurrent_last_step(derived: dict[str, Outcome]) -> None:
    encoder = _derived(derived, "Encoder")
    assert [n.type for n in encoder.graph.nodes] == [
        "embedding",
        "attention",
        "add",
        "layer_norm",
        "gru",
        "dense",
    ]
    assert encoder.graph.inputs[0].dtype == "int64"  # it embeds its input: token ids
    assert encoder.graph.node("add").inputs == ("embed", "attn")
    assert encoder.graph.node("gru").layer.return_sequences is False  # seq[:, -1] is the last step


@pytest.mark.parametrize("name", ["Net", "gelu_mlp", "Encoder"])
def test_generated_twin_matches_the_users_model(
    checked: dict[str, ParityResult | PairError], name: str
) -> None:
    result = checked[name]
    assert isinstance(result, ParityResult), result
    assert result.passed, result.summary()
    assert result.output_max_abs <= 1e-5
    assert result.gradients and all(d.ok for d in result.gradients)
    assert result.params["torch"] == result.params["keras"]  # Keras' GRU reset_after holds both biases too


def test_unsupported_ops_are_all_listed_one_per_line(derived: dict[str, Outcome]) -> None:
    torch_error, keras_error = derived["Blocked"], derived["blocked"]
    assert isinstance(torch_error, PairError) and isinstance(keras_error, PairError)
    lines = str(torch_error).splitlines()
    assert "cannot derive a spec, 2 unsupported op(s)" in lines[0]
    assert lines[1:] == [
        "unsupported: F.leaky_relu at 'leaky_relu'",
        "unsupported: torch.nn.PixelShuffle at 'shuffle'",
    ]
    assert str(keras_error).splitlines()[1:] == [
        "unsupported: LeakyReLU at 'leaky_re_lu'",
        "unsupported: UpSampling2D at 'up_sampling2d'",
    ]


def test_untraceable_model_is_one_line_naming_the_cause(derived: dict[str, Outcome]) -> None:
    error = derived["Branchy"]
    assert isinstance(error, PairError)
    text = str(error)
    assert "\n" not in text
    assert "torch.fx cannot trace Branchy.forward" in text and "control flow" in text
