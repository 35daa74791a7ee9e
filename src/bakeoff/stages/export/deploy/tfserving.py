"""Lay out a TensorFlow SavedModel as TensorFlow Serving loads it: <out>/<name>/<version>/saved_model.pb."""

from __future__ import annotations

import shutil
from pathlib import Path

from bakeoff.errors import UsageError
from bakeoff.stages.export.deploy._layout import check_name, staged


def check_savedmodel(savedmodel: Path) -> None:
    if not (savedmodel / "saved_model.pb").is_file():
        raise UsageError(
            f"{savedmodel} is not a SavedModel (no saved_model.pb): "
            'pass the folder written by Keras model.export(path, format="tf_saved_model")'
        )
    if not (savedmodel / "variables").is_dir():
        raise UsageError(
            f"{savedmodel} has saved_model.pb but no variables/ folder: re-export the SavedModel completely"
        )


def write(savedmodel: Path, out: Path, name: str, version: int = 1) -> Path:
    """Copy `savedmodel` to out/<name>/<version>/ and return out/<name> (TF Serving's --model_base_path)."""
    check_name(name)
    if version < 1:
        raise UsageError(f"version must be a positive integer, got {version}: TF Serving ignores others")
    check_savedmodel(savedmodel)
    dest = out / name / str(version)
    with staged(dest) as scratch:
        shutil.copytree(savedmodel, scratch, dirs_exist_ok=True)
    return out / name
