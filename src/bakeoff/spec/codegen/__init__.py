"""Writes a spec as the PyTorch and the Keras program a person would write by hand, for `show --code`.

Both programs compute what the twins compute (frameworks/torch/build.py, frameworks/keras/build.py),
with every default that differs between the frameworks spelled out. Only text is made here: neither
framework is imported.

torch.py   the PyTorch program: an nn.Module subclass
keras.py   the Keras program: keras.Sequential for a plain stack, else the functional API
shared.py  what both use: safe names, which variable holds each value, and ruff-style formatting
"""

from __future__ import annotations

from bakeoff.spec.codegen.keras import keras_code
from bakeoff.spec.codegen.shared import class_name, ident
from bakeoff.spec.codegen.torch import torch_code

__all__ = ["class_name", "ident", "keras_code", "torch_code"]
