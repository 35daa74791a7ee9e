"""Bring your own pair: find and load a user's model from `FILE.py:NAME`, with one-line errors.

Parsing happens in the parent (so a typo fails before any framework starts); loading happens in the
framework's worker, since importing the user's file imports that framework.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.errors import ANSI, BakeoffError, PairError, one_line

# Worker jobs that load a user's own model: each gets a fresh process, free to import anything.
USER_JOBS = ("byo", "derive", "outputs")

# A model saved in its framework's own format (`bakeoff.parity`/`run` save a session's objects so):
# the file is the whole model, so the ref has no :NAME and the model is named after the file.
SAVED = (".keras", ".pt2")


def parse_ref(ref: str, flag: str) -> tuple[Path, str]:
    if ref.endswith(SAVED):
        saved = Path(ref)
        if not saved.is_file():
            raise PairError(f"{flag} {ref!r}: file '{saved}' does not exist")
        return saved, saved.stem
    path_text, sep, name = ref.rpartition(":")
    if not sep or not path_text or not name:
        raise PairError(f"{flag} {ref!r}: expected FILE.py:NAME, e.g. {flag} models.py:SimpleNet")
    path = Path(path_text)
    if not path.is_file():
        raise PairError(f"{flag} {ref!r}: file '{path}' does not exist")
    if not name.isidentifier():
        raise PairError(f"{flag} {ref!r}: '{name}' is not a Python name")
    return path, name


def user_failure(flag: str, ref: str, what: str, exc: BaseException) -> PairError:
    """One plain line for an exception raised inside the user's code: what failed, the exception's type
    and message, and the user's own file and line where it was raised (the deepest frame in that file)."""
    try:
        path = str(parse_ref(ref, flag)[0].resolve())
    except PairError:  # a model object from the caller's session: no file of the user's to point at
        path = ""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (at {Path(path).name}:{line})" if line else ""
    error = PairError(f"{what} {type(exc).__name__}: {one_line(str(exc))}{where}")
    # The whole traceback, for the file the one line points to.
    error.detail = ANSI.sub("", "".join(traceback.format_exception(exc)))
    return error


def load_object(ref: str, flag: str) -> Any:
    """The object NAME in FILE; a class or function is called without arguments to make the model.
    A saved model (FILE.keras, FILE.pt2) is loaded with its framework's own loader."""
    path, name = parse_ref(ref, flag)
    if ref.endswith(SAVED):
        return _load_saved(path, flag, ref)
    module_name = f"bakeoff_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PairError(f"{flag} {ref!r}: cannot import '{path}' as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent.resolve()))  # so the user's file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise user_failure(flag, ref, f"{flag} {ref!r}: importing '{path}' raised", exc) from exc
    finally:
        sys.path.pop(0)
    if not hasattr(module, name):
        defined = sorted(k for k in vars(module) if not k.startswith("_"))
        raise PairError(
            f"{flag} {ref!r}: '{path}' has no '{name}' (it defines: {', '.join(defined) or 'nothing'})"
        )
    obj = getattr(module, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise user_failure(flag, ref, f"{flag} {ref!r}: {name}() raised", exc) from exc
    return obj


def _load_saved(path: Path, flag: str, ref: str) -> Any:
    # Imported here: the worker that loads a file has imported its framework already; the parent never.
    try:
        if path.suffix == ".keras":
            import keras

            return keras.models.load_model(path)
        import torch

        # A .pt2 holds an ExportedProgram: its graph and weights, no Python class to unpickle.
        return torch.export.load(str(path)).module()
    except Exception as exc:
        what = f"{type(exc).__name__}: {one_line(str(exc))}"
        raise PairError(f"{flag} {ref!r}: cannot load it: {what}") from exc


if TYPE_CHECKING:  # the parent parses refs here without numpy's import
    import numpy as np

Collected = tuple["dict[str, np.ndarray]", dict[str, Any]]


def collect_pairs(pairs: list[dict[str, Any]], one: Callable[[dict[str, Any]], Collected]) -> Collected:
    """Worker side, either framework: `one(pair)` for every pair in turn, arrays prefixed with the
    pair's index; a pair that fails says so in its own meta entry and the next one still runs."""
    arrays: dict[str, np.ndarray] = {}
    metas = []
    for index, pair in enumerate(pairs):
        try:
            pair_arrays, pair_meta = one(pair)
        except BakeoffError as exc:
            pair_meta = {"error": str(exc), "kind": type(exc).__name__, "detail": getattr(exc, "detail", "")}
            pair_arrays = {}
        arrays.update({f"{index}/{k}": v for k, v in pair_arrays.items()})
        metas.append(pair_meta)
    return arrays, {"pairs": metas}
