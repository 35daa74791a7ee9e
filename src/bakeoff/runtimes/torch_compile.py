"""torch.compile on the twin: its first call compiles (reported as the first-inference time)."""

from __future__ import annotations

from pathlib import Path

import torch

from bakeoff.runtimes import LoadOptions, Predict
from bakeoff.runtimes.torch_eager import twin, wrap


def load(path: Path, options: LoadOptions) -> Predict:
    # dynamic=None: recompiles once a second batch size shows up, then treats the batch as symbolic.
    return wrap(torch.compile(twin(path, options)))
