"""Tiny real artifacts for the deploy tests: a Keras SavedModel and its reference outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest


@dataclass(frozen=True)
class ExportedKeras:
    savedmodel: Path
    batch: np.ndarray
    expected: np.ndarray


@pytest.fixture(scope="session")
def keras_savedmodel(tmp_path_factory: pytest.TempPathFactory) -> ExportedKeras:
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="tanh")(inputs))
    path = tmp_path_factory.mktemp("keras") / "savedmodel"
    model.export(str(path), format="tf_saved_model", verbose=False)
    batch = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    return ExportedKeras(path, batch, np.asarray(model(batch)))
