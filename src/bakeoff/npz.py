"""Named arrays to and from .npz files, the format workers and the parent exchange."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def save_arrays(path: Path | str, arrays: Mapping[str, np.ndarray]) -> None:
    # numpy's stubs read a '**' of arrays as its allow_pickle flag.
    np.savez(path, **arrays)  # type: ignore[arg-type]


def load_arrays(path: Path | str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def numbered_inputs(arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """A bring-your-own batch: inputs stored as input/00, input/01, ... in call order."""
    return [arrays[key] for key in sorted(arrays) if key.startswith("input/")]
