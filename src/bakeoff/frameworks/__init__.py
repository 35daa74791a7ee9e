"""Framework backends: `torch/` and `keras/` hold modules of the same names and the same duties.

build.py    spec graph -> idiomatic model of that framework
weights.py  canonical weights <-> the framework's own layout
parity.py   the worker side of a parity check: activations, loss and gradients for one batch
byo.py      a user's own model: its layers, described in canonical form
train.py    the worker side of the training stage (reads `bakeoff.stages.train.shared`)
pipeline.py the worker side of the input-pipeline stage (reads `bakeoff.stages.pipeline.shared`)
export.py   the worker side of the export stage (reads `bakeoff.stages.export.shared`)

Framework code imports a stage's `shared.py` only, never its orchestration. The worker process
(`bakeoff.worker`) runs `bakeoff.frameworks.<package>.<job>.collect(request)`, where the package is the
worker's name less its Keras backend: the `keras` package serves the workers `keras` (Keras on
TensorFlow), `keras-torch` and `keras-jax` (Keras 3 on PyTorch and on JAX), each its own process started
with KERAS_BACKEND set (`keras/backend.py` holds what differs between them).
"""

from __future__ import annotations

from dataclasses import dataclass

from bakeoff.spec import schema as s
from bakeoff.spec.graph import Node

FRAMEWORKS = ("torch", "keras")
# Keras workers -> the KERAS_BACKEND each is started with. 'keras' is Keras on TensorFlow: set
# explicitly, so a KERAS_BACKEND in the user's environment cannot change what 'keras' measures.
KERAS_BACKENDS = {"keras": "tensorflow", "keras-torch": "torch", "keras-jax": "jax"}
# The extra contenders, by their backend's name, as --backends takes them.
BACKEND_WORKERS = {"torch": "keras-torch", "jax": "keras-jax"}
BACKEND_NAMES = {
    "keras": "Keras on TensorFlow",
    "keras-torch": "Keras on PyTorch",
    "keras-jax": "Keras on JAX",
}


def package(worker: str) -> str:
    """The `bakeoff.frameworks` package a worker runs: 'keras' for every Keras backend."""
    return "keras" if worker in KERAS_BACKENDS else worker


@dataclass(frozen=True)
class LayerMap:
    """What a weight mapping needs to know about one layer, whether from a spec or a user's model."""

    kind: str
    # (H, W, C) of the image a dense layer reads after flatten; its kernel rows then need reordering.
    flatten_from: tuple[int, ...] | None = None
    heads: int = 1

    @classmethod
    def of(cls, node: Node) -> LayerMap:
        heads = node.layer.heads if isinstance(node.layer, s.Attention) else 1
        return cls(node.type, node.flatten_from, heads)
