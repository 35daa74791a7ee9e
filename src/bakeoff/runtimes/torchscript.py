"""A TorchScript file (torch.jit.save) loaded with torch.jit.load."""

from __future__ import annotations

from pathlib import Path

import torch

from bakeoff.frameworks.torch.parity import configure
from bakeoff.runtimes import LoadOptions, Predict
from bakeoff.runtimes.torch_eager import wrap


def load(path: Path, options: LoadOptions) -> Predict:
    configure(options.threads)
    return wrap(torch.jit.load(str(path), map_location="cpu").eval())
