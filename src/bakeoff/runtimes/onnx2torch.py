"""An ONNX file brought into PyTorch with onnx2torch and run eagerly: the Keras -> PyTorch conversion."""

from __future__ import annotations

from pathlib import Path

from bakeoff.frameworks.torch.onnx_import import load_onnx
from bakeoff.frameworks.torch.parity import configure
from bakeoff.runtimes import LoadOptions, Predict
from bakeoff.runtimes.torch_eager import wrap


def load(path: Path, options: LoadOptions) -> Predict:
    configure(options.threads)
    return wrap(load_onnx(path))
