"""Loads an ONNX model as a torch.nn.Module with onnx2torch: the ONNX -> PyTorch half of `bakeoff convert`."""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from bakeoff.errors import BakeoffError, UsageError

ONNX2TORCH_INSTALL = "pip install --no-deps onnx2torch==1.5.15"
# The only ONNX ops whose onnx2torch converters call torchvision.
TORCHVISION_OPS = frozenset({"NonMaxSuppression", "RoiAlign"})
# onnx2torch 1.5.15 knows no op version newer than 17 (Squeeze-21 aside), while torch.onnx and Keras
# export opset 18, where ReduceMean, Pad, Split, Resize and others changed their signatures.
NEWEST_OPSET = 17


def load_onnx(path: Path) -> torch.nn.Module:
    """The ONNX model at `path` as a torch module in eval mode; one-line errors for what cannot load."""
    onnx2torch, has_torchvision = _import_onnx2torch()
    model = _read(Path(path))
    if not has_torchvision and (used := TORCHVISION_OPS & {node.op_type for node in model.graph.node}):
        raise BakeoffError(_needs_torchvision(", ".join(sorted(used))))
    model = _within_newest_opset(model)
    _clear_needless_allowzero(model)
    try:
        module = onnx2torch.convert(model)
    except Exception as exc:
        raise BakeoffError(f"onnx2torch cannot convert {Path(path).name}: {_first_line(exc)}") from exc
    return module.eval()


@functools.cache
def _import_onnx2torch() -> tuple[Any, bool]:
    """onnx2torch, and whether the real torchvision stands behind it."""
    has_torchvision = _torchvision_importable()
    try:
        if has_torchvision:
            import onnx2torch
        else:
            with _torchvision_stand_in():
                import onnx2torch
    except ImportError as exc:
        missing = exc.name or "onnx2torch"
        hint = ONNX2TORCH_INSTALL if missing == "onnx2torch" else f"pip install {missing}"
        raise UsageError(f"ONNX import into PyTorch needs the {missing} package: {hint}") from exc
    return onnx2torch, has_torchvision


def _torchvision_importable() -> bool:
    # Importing, not just finding it: PyPI's torchvision installs fine beside this machine's CPU torch
    # wheel but fails at import ("operator torchvision::nms does not exist").
    try:
        import torchvision  # noqa: F401
    except Exception:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]  # leftovers of the failed import
        return False
    return True


@contextmanager
def _torchvision_stand_in() -> Iterator[None]:
    """Lets onnx2torch import without torchvision, for the ONNX graphs that never reach NMS or RoiAlign.

    onnx2torch imports torchvision at import time, yet only its NonMaxSuppression and RoiAlign converters
    call it; and `pip install onnx2torch` with its dependencies would replace the pinned CPU torch with a
    multi-GB CUDA build. The stand-in is in sys.modules only while onnx2torch imports, so nothing else
    ever mistakes it for torchvision; onnx2torch keeps its own references to it.
    """
    package, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    for name in ("nms", "roi_align", "box_convert"):
        setattr(ops, name, functools.partial(_unavailable, name))
    package.ops = ops  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("torchvision", "torchvision.ops")}
    sys.modules.update({"torchvision": package, "torchvision.ops": ops})
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _unavailable(name: str, *args: object, **kwargs: object) -> None:
    raise BakeoffError(_needs_torchvision(f"torchvision.ops.{name}"))


def _needs_torchvision(what: str) -> str:
    return (
        f"this model uses a detection op ({what}) that onnx2torch runs with torchvision, and torchvision "
        f"does not import beside torch {torch.__version__}: install a torchvision built for this torch"
    )


def _read(path: Path) -> Any:
    import onnx  # onnx2torch imported fine, so onnx is there

    if not path.is_file():
        raise UsageError(f"ONNX file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise UsageError(f"{path} is not a readable ONNX model: {_first_line(exc)}") from exc


def _within_newest_opset(model: Any) -> Any:
    """The model rewritten to opset NEWEST_OPSET by ONNX's own version converter, where it can be."""
    from onnx import version_converter

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset <= NEWEST_OPSET:
        return model
    try:
        return version_converter.convert_version(model, NEWEST_OPSET)
    except Exception:
        return model  # onnx2torch's own error will then name the op it lacks


def _clear_needless_allowzero(model: Any) -> None:
    """Clears Reshape's allowzero where the target shape is a constant without zeros.

    torch.onnx's dynamo exporter marks every Reshape allowzero=1, which onnx2torch refuses. The flag only
    changes what a 0 in the target shape means, so where the shape is a constant with no 0 it changes
    nothing and can go.
    """
    reshapes = [n for n in model.graph.node if n.op_type == "Reshape" and _allowzero(n) == 1]
    constants = _constant_values(model.graph, {n.input[1] for n in reshapes})
    for node in reshapes:
        shape = constants.get(node.input[1])
        if shape is not None and 0 not in shape:
            for attribute in node.attribute:
                if attribute.name == "allowzero":
                    attribute.i = 0


def _allowzero(node: Any) -> int:
    return next((a.i for a in node.attribute if a.name == "allowzero"), 0)


def _constant_values(graph: Any, names: set[str]) -> dict[str, list[int]]:
    """The values of the initializers and Constant nodes named in `names`."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t).tolist() for t in graph.initializer if t.name in names}
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] in names:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                values[node.output[0]] = numpy_helper.to_array(value).tolist()
    return values


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
