"""Trains the PyTorch twin once (eager) and saves its weights in canonical form, so every exported
artifact of both frameworks starts from the same trained weights and accuracy means something."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.torch.parity import configure
from bakeoff.frameworks.torch.train import fit
from bakeoff.frameworks.torch.weights import read_from
from bakeoff.stages.train.shared import Setup
from bakeoff.twins.canonical import save_weights


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    setup = Setup.from_request(request)
    configure(setup.options.thread_count)
    model, arrays, meta = fit(setup, "eager", torch.device("cpu"))
    layers: Any = model.layers
    weights = {
        node.name: read_from(layers[node.name], LayerMap.of(node))
        for node in setup.graph.nodes
        if node.name in setup.weights
    }
    save_weights(weights, Path(request["trained"]))
    return {}, {
        "val_acc": meta["val_acc"],
        "train_acc": meta["train_acc"],
        "seconds": float(arrays["epoch_seconds"].sum()),
        "epochs": setup.options.epochs,
    }
