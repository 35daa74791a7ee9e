"""The SavedModel's serving_default signature compiled with XLA (tf.function(jit_compile=True)); its
first call per batch size compiles, reported as the first-inference time."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from bakeoff.frameworks.keras.parity import configure
from bakeoff.runtimes import LoadOptions, Predict
from bakeoff.runtimes.tf_savedmodel import bind, input_names, signature


def load(path: Path, options: LoadOptions) -> Predict:
    configure(options.threads)
    loaded, function = signature(path)
    compiled = tf.function(lambda **inputs: function(**inputs), jit_compile=True)
    predict = bind(compiled, input_names(function, options))
    predict.keepalive = loaded  # type: ignore[attr-defined]
    return predict
