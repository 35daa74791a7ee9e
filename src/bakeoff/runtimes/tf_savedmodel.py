"""A TF SavedModel's serving_default signature: a concrete graph function, as TF Serving runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from bakeoff.frameworks.keras.parity import configure
from bakeoff.runtimes import LoadOptions, Predict


def signature(path: Path) -> tuple[Any, Any]:
    """The loaded object (the signature needs it alive) and its serving_default function."""
    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"{path}: no serving_default signature (has {', '.join(loaded.signatures)})")
    return loaded, loaded.signatures["serving_default"]


def input_names(function: Any, options: LoadOptions) -> list[str]:
    """The signature's keyword for each spec input, in spec order. Keras' export and onnx2tf both name
    them after the inputs; a single input is unambiguous whatever its name."""
    _, kwargs = function.structured_input_signature
    keys = list(kwargs)
    spec = [i["name"] for i in (options.spec or {}).get("inputs", [])]
    if set(spec) == set(keys):
        return spec
    if len(keys) == 1:
        return keys
    raise ValueError(f"signature inputs {keys} do not match the model's inputs {spec}")


def bind(function: Any, names: list[str]) -> Predict:
    def predict(inputs: list[np.ndarray]) -> np.ndarray:
        outputs = function(**{n: tf.constant(x) for n, x in zip(names, inputs, strict=True)})
        return next(iter(outputs.values())).numpy()

    return predict


def load(path: Path, options: LoadOptions) -> Predict:
    configure(options.threads)
    loaded, function = signature(path)
    predict = bind(function, input_names(function, options))
    predict.keepalive = loaded  # type: ignore[attr-defined]
    return predict
