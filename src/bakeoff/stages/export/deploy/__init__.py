"""Writers that lay out exported model artifacts exactly as model servers load them.

Pure file operations run in the parent process: nothing here imports torch or TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bakeoff.stages.export.deploy import tfserving, torchserve, triton
from bakeoff.stages.export.deploy.tensors import TensorSpec, onnx_specs

TARGETS: dict[str, Callable[..., Path]] = {
    "tfserving": tfserving.write,
    "triton": triton.write,
    "torchserve": torchserve.write,
}

__all__ = ["TARGETS", "TensorSpec", "onnx_specs"]
