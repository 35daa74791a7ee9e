"""The outputs of several torch models on one batch: a generated twin beside the user's exact model
saved with torch.export (`bakeoff.handoff.same_outputs` compares them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bakeoff.frameworks.torch.byo import first_tensor
from bakeoff.frameworks.torch.parity import configure, to_torch_input
from bakeoff.npz import load_arrays, numbered_inputs
from bakeoff.twins.byo import load_object, user_failure


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    meta = configure(request["threads"])
    inputs = [to_torch_input(x) for x in numbered_inputs(load_arrays(request["batch"]))]
    arrays = {}
    for index, ref in enumerate(request["refs"]):
        model = load_object(ref, "--torch")
        if not ref.endswith(".pt2"):  # an exported program keeps the mode it was exported in
            model.eval()
        try:
            with torch.no_grad():
                arrays[f"output/{index}"] = first_tensor(model(*inputs)).numpy()
        except Exception as exc:
            raise user_failure("--torch", ref, f"--torch {ref!r} failed on the parity batch:", exc) from exc
    return arrays, meta
