"""bakeoff: PyTorch or TensorFlow, settled by measurement on your own model and hardware.

From Python (a notebook): `bakeoff.parity(model, input_shape=...)` and `bakeoff.run(model, ...)`; see
docs/notebook.md. They are loaded on first use, so `import bakeoff` and the CLI import no framework.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "parity", "run"]


def __getattr__(name: str) -> Any:
    if name in ("parity", "run"):
        from bakeoff import api

        return getattr(api, name)
    raise AttributeError(f"module 'bakeoff' has no attribute {name!r}")
