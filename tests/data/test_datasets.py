"""Datasets: the MNIST CSV parsed exactly as numpy's own reader would, and a shorter training split."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from bakeoff.data import datasets
from bakeoff.errors import UsageError
from bakeoff.spec.load import resolve


def test_mnist_table_matches_numpys_reader() -> None:
    with gzip.open(datasets.mnist_path(), "rt") as f:
        expected = np.loadtxt(f, delimiter=",", dtype=np.float32)
    table = datasets._mnist_table()
    assert table.dtype == np.float32 and table.shape == (5000, 785)
    assert np.array_equal(table, expected)


def test_integer_csv_parse_and_what_it_leaves_to_numpy() -> None:
    assert np.array_equal(datasets._parse_uint_csv(b"1,20\n300,4"), [[1, 20], [300, 4]])
    assert np.array_equal(datasets._parse_uint_csv(b"0,255,7\n"), [[0, 255, 7]])
    for text in (b"1,2\n3\n", b"1.5,2\n", b"-1,2\n", b"1,,2\n", b"", b"\n", b"1,2 \n"):
        assert datasets._parse_uint_csv(text) is None, text


def test_head_keeps_the_first_training_samples_and_all_of_validation() -> None:
    data = datasets.load(resolve("simplenet"), "mnist", seed=0)
    short = data.head(640)
    assert short.n_train == 640 and len(short.y_val) == len(data.y_val)
    assert np.array_equal(short.x_train[0], data.x_train[0][:640])
    assert np.array_equal(short.y_train, data.y_train[:640])
    assert data.head(None) is data and data.head(10**6) is data


@pytest.mark.parametrize("samples", [10, 63])
def test_fewer_training_samples_than_a_batch_is_a_usage_error(samples: int) -> None:
    from bakeoff.errors import UsageError
    from bakeoff.stages.train.shared import TrainOptions
    from bakeoff.stages.train.training import check_options

    graph = resolve("simplenet")
    with pytest.raises(UsageError, match=f"train_samples {samples} is smaller than one batch"):
        check_options(graph, TrainOptions(train_samples=samples), datasets.load(graph, "mnist"))


def write_npz(tmp_path, **arrays: np.ndarray):  # type: ignore[no-untyped-def]
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        (
            {"x": np.full((20, 784), np.nan, np.float32), "y": np.zeros(20)},
            "array 'x' has 15,680 NaN or infinite",
        ),
        ({"x": np.zeros((20, 784)), "y": np.full(20, np.inf)}, "array 'y' has 20 NaN or infinite"),
        ({"x": np.zeros((20, 784)), "y": np.full(20, np.nan)}, "array 'y' has 20 NaN or infinite"),
        ({"x": np.zeros((20, 784)), "y": np.full(20, 10)}, "labels must lie in [0, 10), found 10..10"),
        ({"x": np.zeros((20, 784)), "y": np.full(20, -1)}, "labels must lie in [0, 10), found -1..-1"),
        ({"x": np.zeros((20, 784)), "y": np.full(20, 1.5)}, "array 'y' (labels) must hold whole numbers"),
        (
            {"x": np.array([["a"] * 784] * 20), "y": np.zeros(20)},
            "array 'x' holds <U1 values; it must hold numbers",
        ),
        ({"x": np.zeros((1, 784)), "y": np.zeros(1)}, "1 sample(s); training and validation need at least 2"),
    ],
)
def test_user_data_that_cannot_train_is_refused(tmp_path, arrays, expected) -> None:  # type: ignore[no-untyped-def]
    """All-NaN data used to train to NaN outputs and report val acc 1.000 with every check passed."""
    with pytest.raises(UsageError) as err:
        datasets.from_npz(write_npz(tmp_path, **arrays), resolve("simplenet"))
    assert expected in str(err.value)


def test_token_ids_out_of_the_vocabulary_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph = resolve("transformer-tiny")
    (spec,) = graph.inputs
    vocab = graph.int_ranges[spec.name]
    x = np.full((20, *spec.shape), vocab, np.int64)
    with pytest.raises(UsageError, match=rf"token ids must lie in \[0, {vocab}\)"):
        datasets.from_npz(write_npz(tmp_path, x=x, y=np.zeros(20)), graph)
