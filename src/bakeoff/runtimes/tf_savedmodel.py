"""A TF SavedModel's serving_default signature: a concrete graph function, as TF Serving runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from bakeoff.frameworks.keras.parity import configure
from bakeoff.runtimes import LoadOptions, Predict


def signature(path: Path) -> Any:
    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"{path}: no serving_default signature (has {', '.join(loaded.signatures)})")
    return loaded, loaded.signatures["serving_default"]


def input_names(function: Any) -> list[str]:
    """Signature inputs are keyword arguments; the exporter numbers or names them in spec order."""
    _, kwargs = function.structured_input_signature
    return list(kwargs)


def load(path: Path, options: LoadOptions) -> Predict:
    configure(options.threads)
    loaded, function = signature(path)
    names = input_names(function)

    def predict(inputs: list[np.ndarray]) -> np.ndarray:
        outputs = function(**{n: tf.constant(x) for n, x in zip(names, inputs, strict=True)})
        return next(iter(outputs.values())).numpy()

    predict.keepalive = loaded  # type: ignore[attr-defined]  # the signature needs its object alive
    return predict
