"""The SavedModel's `serve` function compiled with XLA (tf.function(jit_compile=True)); its first call
per batch size compiles, reported as the first-inference time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from bakeoff.frameworks.keras.parity import configure
from bakeoff.runtimes import LoadOptions, Predict


def load(path: Path, options: LoadOptions) -> Predict:
    configure(options.threads)
    loaded = tf.saved_model.load(str(path))
    serve = tf.function(lambda *xs: loaded.serve(*xs), jit_compile=True)

    def predict(inputs: list[np.ndarray]) -> np.ndarray:
        return serve(*[tf.constant(x) for x in inputs]).numpy()

    return predict
