"""A torch.export ExportedProgram (.pt2) loaded back and run as a module."""

from __future__ import annotations

from pathlib import Path

import torch

from bakeoff.frameworks.torch.parity import configure
from bakeoff.runtimes import LoadOptions, Predict
from bakeoff.runtimes.torch_eager import wrap


def load(path: Path, options: LoadOptions) -> Predict:
    configure(options.threads)
    return wrap(torch.export.load(str(path)).module())
