"""Model objects from the caller's Python session, handed to the framework workers as files in each
framework's own format, never pickled: a process cannot safely unpickle another's framework internals,
and a class defined in a notebook cannot be imported by a worker anyway.

- Keras: `model.save(NAME.keras)`; workers load it with `keras.models.load_model`, and it is derived and
  checked exactly as a FILE.py:NAME would be.
- torch: `torch.export.save` of the exported module as NAME.pt2, the user's exact model. An exported
  module has lost its nn.Conv2d/nn.Linear submodules, which deriving and per-layer parity read, so the
  spec is derived here, from the object itself (its framework is imported in this process already), and
  the torch twin generated from that spec is written as NAME_torch.py, loading the object's own weights
  (NAME_weights.npz). The workers take that twin as the user's torch model; `same_outputs` then runs the
  .pt2 beside it in a worker to prove the twin computes what the user's exact model computes.
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import PairError, one_line
from bakeoff.npz import save_arrays
from bakeoff.spec.derive import spec_name
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.load import from_dict
from bakeoff.twins.parity import make_batch

# The generated twin's last lines: the weights of the user's object, by the twin's own parameter names.
LOAD_WEIGHTS = """

# The weights of the model object handed to bakeoff, saved beside this file by the twin's names.
import numpy as _np  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_saved = _np.load(_Path(__file__).with_name("{weights}"))
model.load_state_dict({{key: torch.from_numpy(_saved[key]) for key in _saved.files}})
{name} = model  # under the object's class name, which names the derived spec and the run
"""


@dataclass(frozen=True)
class Handed:
    """A model object as a ref the workers load; `exact` is the .pt2 of a torch object, whose outputs
    the ref's twin must reproduce."""

    framework: str
    ref: str
    name: str
    exact: str | None = None
    graph: Graph | None = None


def framework_of(obj: Any) -> str | None:
    """'torch' or 'keras' for a model object, None for anything else; neither framework is imported
    here: an object of one comes from a session that imported it already."""
    torch, keras = sys.modules.get("torch"), sys.modules.get("keras")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return "torch"
    if keras is not None and isinstance(obj, keras.Model):
        return "keras"
    return None


def hand_over(obj: Any, framework: str, shapes: list[tuple[int, ...]], folder: Path) -> Handed:
    """Saves `obj` into `folder` for the workers; `shapes` per sample, channels-last."""
    found = framework_of(obj)
    if found != framework:
        wanted = "a torch.nn.Module" if framework == "torch" else "a keras.Model"
        raise PairError(f"{framework}=: got a {type(obj).__name__}, not {wanted}")
    folder.mkdir(parents=True, exist_ok=True)
    return _keras(obj, folder) if framework == "keras" else _torch(obj, shapes, folder)


def _keras(model: Any, folder: Path) -> Handed:
    name = _safe(model.name)
    path = folder / f"{name}.keras"
    try:
        model.save(path)
    except Exception as exc:  # e.g. a subclassed model without get_config
        raise PairError(f"keras=: cannot save {name} as .keras: {_said(exc)}") from exc
    return Handed("keras", str(path), name)


def _torch(model: Any, shapes: list[tuple[int, ...]], folder: Path) -> Handed:
    import torch

    from bakeoff.frameworks.torch.derive import spec_of
    from bakeoff.frameworks.torch.parity import to_torch_input
    from bakeoff.spec.codegen import torch_code

    name = _safe(type(model).__name__)
    exact = folder / f"{name}.pt2"
    spec = spec_of(model, f"{name} (a torch.nn.Module object)", shapes, name)
    graph = build_graph(from_dict(spec, source=f"the spec derived from {name}"))
    examples = tuple(to_torch_input(x) for x in make_batch(graph, 2, 0)[0])
    training = model.training
    model.eval()  # parity compares inference; the exported program keeps the mode it was exported in
    try:
        batch = torch.export.Dim.AUTO  # any batch size, as the parity batch and the stages need
        dynamic = tuple({0: batch} for _ in examples)
        torch.export.save(torch.export.export(model, examples, dynamic_shapes=dynamic), str(exact))
    except Exception as exc:
        raise PairError(f"torch=: torch.export cannot export {name}: {_said(exc)}") from exc
    finally:
        model.train(training)
    weights = folder / f"{name}_weights.npz"
    twin = folder / f"{name}_torch.py"
    code = torch_code(graph)
    header = f"# The torch twin bakeoff generated from your {name} object, with its weights\n"
    twin.write_text(header + code + LOAD_WEIGHTS.format(weights=weights.name, name=name))
    save_arrays(weights, _by_twin_names(model, _twin_keys(twin), name))
    return Handed("torch", f"{twin}:{name}", name, str(exact), graph)


def same_outputs(handed: Handed, batch: int, seed: int, threads: int) -> float:
    """Max |difference| between the outputs of the torch twin (the ref) and the user's exact model (the
    .pt2) on one batch, both run in one torch worker."""
    assert handed.exact is not None and handed.graph is not None
    from bakeoff.twins.parity import _run

    inputs = make_batch(handed.graph, batch, seed)[0]
    with tempfile.TemporaryDirectory(prefix="bakeoff-exact-") as tmp:
        path = Path(tmp) / "batch.npz"
        save_arrays(path, {f"input/{i:02d}": x for i, x in enumerate(inputs)})
        request = {
            "job": "outputs",
            "framework": "torch",
            "refs": [handed.ref, handed.exact],
            "batch": str(path),
            "threads": threads,
        }
        arrays = _run([request], Path(tmp))["torch"].arrays
    twin, exact = arrays["output/0"].astype(np.float64), arrays["output/1"].astype(np.float64)
    return float(np.max(np.abs(twin - exact))) if twin.shape == exact.shape else float("inf")


def _twin_keys(twin: Path) -> dict[str, tuple[int, ...]]:
    """The generated twin's parameters and buffers, by name, from the code alone (no weights yet)."""
    code = twin.read_text().split("\n# The weights of the model object")[0]
    namespace: dict[str, Any] = {"__name__": "bakeoff_twin"}
    exec(compile(code, str(twin), "exec"), namespace)  # bakeoff's own generated code
    return {k: tuple(v.shape) for k, v in namespace["model"].state_dict().items()}


def _by_twin_names(model: Any, wanted: dict[str, tuple[int, ...]], name: str) -> dict[str, np.ndarray]:
    """The object's state under the twin's names: the spec names a layer after its module's path."""
    own = {}
    for key, value in model.state_dict().items():
        where, _, part = key.rpartition(".")
        own[f"{spec_name(where)}.{part}"] = value.detach().cpu().numpy()
    missing = [k for k, shape in wanted.items() if k not in own or tuple(own[k].shape) != shape]
    if missing:
        raise PairError(
            f"torch=: the twin generated from {name} holds {', '.join(missing[:3])}, which {name}'s "
            "state_dict has not in that shape; its weights cannot be carried over"
        )
    return {k: own[k] for k in wanted}


def _safe(name: str) -> str:
    """A Python name for files and the twin's variable."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"
    return f"m_{safe}" if safe[0].isdigit() else safe


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(str(exc), 240)}"
