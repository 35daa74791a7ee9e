"""torch.compile on the twin: its first call compiles (reported as the first-inference time)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch._inductor.compile_fx  # with this module, so a zygote (measure.zygote) pays it once

from bakeoff.runtimes import LoadOptions, Predict
from bakeoff.runtimes.torch_eager import on_device, wrap


def load(path: Path, options: LoadOptions) -> Predict:
    model, device = on_device(path, options)
    # dynamic=None: recompiles once a second batch size shows up, then treats the batch as symbolic.
    return wrap(torch.compile(model), device)
