"""Bring-your-own pairs through real worker processes: the seed snippets, layout traps, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bakeoff.errors import PairError, WorkerError
from bakeoff.twins.parity import check_pair

pytestmark = pytest.mark.slow


def ref(fixtures: Path, file: str, name: str) -> str:
    return f"{fixtures / file}:{name}"


def test_seed_article_snippets_pass(fixtures: Path) -> None:
    result = check_pair(
        ref(fixtures, "seed_torch.py", "SimpleNet"), ref(fixtures, "seed_keras.py", "model"), [(784,)]
    )
    assert result.passed, result.summary()
    assert result.output_max_abs <= 1e-5
    assert [d.layer for d in result.layers] == ["layer1 ↔ dense", "layer2 ↔ dense_1"]
    assert result.params == {"torch": 101_770, "keras": 101_770}


def test_conv_flatten_order_is_handled(fixtures: Path) -> None:
    result = check_pair(
        ref(fixtures, "torch_models.py", "SmallConv"),
        ref(fixtures, "keras_models.py", "small_conv"),
        [(28, 28, 1)],
    )
    assert result.passed, result.summary()


def test_batch_norm_pair(fixtures: Path) -> None:
    result = check_pair(
        ref(fixtures, "torch_models.py", "WithBatchNorm"),
        ref(fixtures, "keras_models.py", "with_batch_norm"),
        [(12,)],
    )
    assert result.passed, result.summary()


def test_shape_mismatch_names_layer_and_shapes(fixtures: Path) -> None:
    with pytest.raises(PairError) as err:
        check_pair(
            ref(fixtures, "seed_torch.py", "SimpleNet"),
            ref(fixtures, "keras_models.py", "too_narrow"),
            [(784,)],
        )
    message = str(err.value)
    assert "layer 1: torch 'layer1' (Linear) vs Keras" in message
    assert "[784, 128]" in message and "[784, 64]" in message


def test_layer_count_mismatch_lists_both(fixtures: Path) -> None:
    with pytest.raises(PairError, match=r"torch model has 2 weight layers .* Keras model has 3"):
        check_pair(
            ref(fixtures, "seed_torch.py", "SimpleNet"),
            ref(fixtures, "keras_models.py", "three_layers"),
            [(784,)],
        )


def test_factory_that_raises_shows_its_message(fixtures: Path) -> None:
    with pytest.raises(PairError, match=r"broken_factory\(\) raised ValueError: this factory needs a GPU"):
        check_pair(
            ref(fixtures, "torch_models.py", "broken_factory"),
            ref(fixtures, "seed_keras.py", "model"),
            [(784,)],
        )


def test_missing_attribute_lists_what_the_file_defines(fixtures: Path) -> None:
    with pytest.raises(PairError, match=r"has no 'Nope' \(it defines: .*SimpleNet"):
        check_pair(ref(fixtures, "seed_torch.py", "Nope"), ref(fixtures, "seed_keras.py", "model"), [(784,)])


def test_not_a_model(fixtures: Path) -> None:
    with pytest.raises(PairError, match=r"gave a int, not a keras\.Model"):
        check_pair(
            ref(fixtures, "seed_torch.py", "SimpleNet"),
            ref(fixtures, "keras_models.py", "not_a_model"),
            [(784,)],
        )


def test_unsupported_layer_is_named(fixtures: Path) -> None:
    with pytest.raises(PairError, match=r"torch layer 'scale' \(Scale\) has weights bakeoff cannot map"):
        check_pair(
            ref(fixtures, "torch_models.py", "Custom"), ref(fixtures, "seed_keras.py", "model"), [(784,)]
        )


def test_missing_file_fails_before_any_worker(tmp_path: Path) -> None:
    with pytest.raises(PairError, match=r"file .* does not exist"):
        check_pair(f"{tmp_path}/none.py:Net", f"{tmp_path}/none.py:model", [(4,)])


def test_wrong_input_shape_is_a_clear_error(fixtures: Path) -> None:
    with pytest.raises(PairError, match=r"--torch model failed on inputs of shape \[\[8, 100\]\]"):
        check_pair(
            ref(fixtures, "seed_torch.py", "SimpleNet"), ref(fixtures, "seed_keras.py", "model"), [(100,)]
        )


def test_a_model_that_kills_its_worker_is_reported_not_fatal(fixtures: Path) -> None:
    with pytest.raises(WorkerError, match="torch worker died from signal 9"):
        check_pair(
            ref(fixtures, "torch_models.py", "KillsItsProcess"),
            ref(fixtures, "seed_keras.py", "model"),
            [(784,)],
        )


def test_a_keras_call_that_raises_is_one_plain_line_naming_the_users_line(fixtures: Path) -> None:
    with pytest.raises(PairError) as err:
        check_pair(
            ref(fixtures, "seed_torch.py", "SimpleNet"),
            ref(fixtures, "keras_models.py", "RaisesInCall"),
            [(784,)],
        )
    message = str(err.value)
    assert "\n" not in message and "\x1b" not in message and "Arguments received" not in message
    assert "ValueError" in message and "this model refuses every batch" in message
    assert re.search(r"\(at keras_models\.py:\d+\)$", message), message
