"""The Keras twin (spec + trained canonical weights) on whichever Keras 3 backend its worker runs:
TensorFlow, PyTorch or JAX (KERAS_BACKEND, set when the worker starts), called as Keras' predict
compiles it on that backend (`frameworks.keras.backend.predictor`)."""

from __future__ import annotations

from pathlib import Path

from bakeoff.frameworks.keras import backend
from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.weights import load_weights
from bakeoff.runtimes import LoadOptions, Predict
from bakeoff.spec.graph import build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.twins.canonical import load_weights as load_canonical


def load(path: Path, options: LoadOptions) -> Predict:
    backend.configure(options.threads)
    graph = build_graph(ModelSpec.model_validate(options.spec))
    model = build(graph)
    load_weights(model, graph, load_canonical(path))
    return backend.predictor(model)
