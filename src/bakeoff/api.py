"""bakeoff from Python: `bakeoff.parity(...)` and `bakeoff.run(...)` take the model objects a notebook
holds (a torch.nn.Module and/or a keras.Model), or the strings the CLI takes (a zoo name or spec; a
FILE.py:NAME for torch=/keras=). Objects go to the workers as files in their framework's own format
(`bakeoff.handoff`); everything after that is what `bakeoff parity` and `bakeoff run` do.

Errors are raised as one-line BakeoffErrors, without the framework's traceback chained to them: the
full text of an error raised in the user's own code is saved in the output folder and named.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError, PairError, UsageError
from bakeoff.npz import save_arrays
from bakeoff.views import Parity, Run

Shape = str | Sequence[int]
Model = Any  # a torch.nn.Module, a keras.Model, or a string: neither framework is imported here
DEFAULT_STAGES = ("parity", "train", "pipeline", "export", "infer")


def parity(
    model: Model = None,
    *,
    torch: Model = None,
    keras: Model = None,
    input_shape: Shape | Sequence[Shape] | None = None,
    match_defaults: bool = False,
    out: str | Path = "bakeoff-runs",
    atol: float = 1e-5,
    grad_atol: float = 1e-4,
    batch: int = 8,
    seed: int = 0,
    threads: int | None = None,
) -> Parity:
    """Do the PyTorch and Keras sides compute the same thing? `model`: one model object (either
    framework: its twin is derived and checked against it), or a zoo name / spec path. `torch=` and
    `keras=`: one side or a pair, objects or FILE.py:NAME. `input_shape` per sample as you would type
    it for your framework (1,28,28 for torch, 28,28,1 for Keras); a list for several inputs."""
    from bakeoff.twins import parity as p

    with _plain():
        options = p.ParityOptions(atol=atol, grad_atol=grad_atol, batch=batch, seed=seed, threads=threads)
        torch, keras, zoo = _sides(model, torch, keras)
        if zoo is not None:
            from bakeoff.spec.load import resolve

            return Parity(p.check(resolve(zoo), options), atol=atol)
        from bakeoff.twins.own import check_own

        shapes, readings = _shapes(input_shape)
        own = _Own(torch, keras, shapes, Path(out))
        result = check_own(own.torch, own.keras, shapes, options, match_defaults, own.folder)
        result.notes[:0] = readings
        exact = own.exact(batch, seed, options.thread_count)
        return Parity(result, own.folder, exact, atol)


def run(
    model: Model = None,
    *,
    torch: Model = None,
    keras: Model = None,
    input_shape: Shape | Sequence[Shape] | None = None,
    data: Any = None,
    stages: Sequence[str] = DEFAULT_STAGES,
    quick: bool = False,
    modes: Sequence[str] | None = None,
    epochs: int = 3,
    batch_size: int = 64,
    out: str | Path = "bakeoff-runs",
    seed: int = 0,
    threads: int | None = None,
    progress: Callable[[str], None] | None = print,
) -> Run:
    """Every stage on your model, as `bakeoff run` does: parity, training modes, input pipelines,
    exports, inference; then report.html and the verdict. Models as for `parity`. `data`: arrays
    (x, y), a dict {"x": ..., "y": ...} (x0, x1, ... for several inputs), or what --data takes
    (mnist, synthetic, FILE.npz); images may come channels-first for a torch model.
    `progress`: called with each progress line (None: silent)."""
    from bakeoff import runner
    from bakeoff.measure.env import physical_cores
    from bakeoff.report.build import write_after_run
    from bakeoff.run_options import RunSettings, run_options

    with _plain():
        torch, keras, zoo = _sides(model, torch, keras)
        settings = RunSettings(quick=quick, epochs=epochs, batch_size=batch_size, seed=seed, threads=threads)
        if modes is not None:
            settings = replace(settings, modes=tuple(modes))
        byo: dict[str, Any] | None = None
        own: _Own | None = None
        notes: list[str] = []
        if zoo is None:
            shapes, notes = _shapes(input_shape)
            own = _Own(torch, keras, shapes, Path(out))
            byo = {
                "torch": own.torch,
                "keras": own.keras,
                "input_shapes": [list(s) for s in shapes],
                "name": own.name,
            }
        folder = own.folder if own else Path(out)
        saved = _data(data, folder, input_shape)
        if saved is not None:
            settings = replace(settings, data=saved)
        options = run_options(settings)
        say = progress or (lambda line: None)
        exact = own.exact(settings.batch, seed, threads or physical_cores()) if own else None
        outcome = runner.run_stages(zoo or "", Path(out), list(stages), options, say, byo=byo)
        report = write_after_run(outcome.path, None, [])
    view = Run.read(outcome.path, outcome.latest, outcome.results.get("parity"))
    view.notes = [*notes, *([f"report: {report['error']}"] if "error" in report else [])]
    if own is not None:
        view.notes.append(f"your model as handed to the workers: {own.folder}")
    if exact is not None:
        line = f"your exact model (.pt2) against the torch twin: max output diff {exact:.2e}"
        view.notes.append(line)
        if exact > settings.atol:
            view.failed.append(line)
    return view


class _Own:
    """The user's model(s) as refs the workers load: objects saved under OUT/objects/STAMP-NAME/."""

    def __init__(self, torch: Model, keras: Model, shapes: list[tuple[int, ...]], out: Path) -> None:
        from bakeoff.handoff import Handed, hand_over
        from bakeoff.twins.byo import parse_ref

        if torch is None and keras is None:
            raise UsageError("give a model: bakeoff.parity(model), or torch= and/or keras=")
        given = [(f, m) for f, m in (("torch", torch), ("keras", keras)) if m is not None]
        self.name = next(
            parse_ref(m, f"{f}=")[1] if isinstance(m, str) else _object_name(m) for f, m in given
        )
        self.folder = out / "objects" / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.name}"
        self.handed: Handed | None = None
        refs: dict[str, str] = {}
        for framework, m in given:
            if isinstance(m, str):
                refs[framework] = m
                continue
            handed = hand_over(m, framework, shapes, self.folder)
            refs[framework] = handed.ref
            if handed.exact:
                self.handed = handed
        self.torch, self.keras = refs.get("torch"), refs.get("keras")

    def exact(self, batch: int, seed: int, threads: int) -> float | None:
        """For a torch object: its exact model's (the .pt2's) max output diff from its twin."""
        from bakeoff.handoff import same_outputs

        return same_outputs(self.handed, batch, seed, threads) if self.handed else None


def _object_name(model: Any) -> str:
    from bakeoff.handoff import framework_of

    return str(model.name) if framework_of(model) == "keras" else type(model).__name__


def _sides(model: Model, torch: Model, keras: Model) -> tuple[Model, Model, str | None]:
    """(torch, keras, zoo name or spec): `model` goes where its framework says; a string is a zoo name."""
    from bakeoff.handoff import framework_of

    if model is None:
        return torch, keras, None
    if torch is not None or keras is not None:
        raise UsageError("give either model or torch=/keras=, not both")
    if isinstance(model, str | Path):
        return None, None, str(model)
    framework = framework_of(model)
    if framework is None:
        raise PairError(
            f"model=: got a {type(model).__name__}; give a torch.nn.Module, a keras.Model, "
            "or a zoo name (bakeoff zoo lists them)"
        )
    return (model, None, None) if framework == "torch" else (None, model, None)


def _shapes(given: Shape | Sequence[Shape] | None) -> tuple[list[tuple[int, ...]], list[str]]:
    from bakeoff.twins.layout import read_input_shapes

    if given is None:
        raise UsageError("your own model needs input_shape=, e.g. (784,) or (1, 28, 28)")
    if isinstance(given, str) or all(isinstance(d, int) for d in given):
        texts = [_text(given)]  # type: ignore[arg-type]
    else:
        texts = [_text(s) for s in given if not isinstance(s, int)]
    return read_input_shapes(texts)


def _text(shape: Shape) -> str:
    return shape if isinstance(shape, str) else ",".join(str(d) for d in shape)


def _data(data: Any, folder: Path, input_shape: Any) -> str | None:
    """`data` as --data takes it: arrays are saved as FILE.npz (x channels-last, as specs hold them)."""
    if data is None or isinstance(data, str | Path):
        return None if data is None else str(data)
    arrays = dict(data) if isinstance(data, dict) else dict(zip(("x", "y"), data, strict=True))
    typed = None if input_shape is None else _shapes(input_shape)[0]
    for key, x in list(arrays.items()):
        x = np.asarray(x)
        turned = (*x.shape[2:], x.shape[1]) if x.ndim == 4 else ()
        if key != "y" and typed and tuple(x.shape[1:]) not in typed and turned in typed:
            x = x.transpose(0, 2, 3, 1)  # a channels-first batch, as torch takes it
        arrays[key] = x
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.npz"
    save_arrays(path, arrays)
    return str(path)


@contextmanager
def _plain() -> Iterator[None]:
    """A BakeoffError raised as its one line: the framework's traceback behind it stays in the files
    the message names, not on the notebook's screen."""
    try:
        yield
    except BakeoffError as exc:
        fresh = type(exc)(str(exc))
        if hasattr(exc, "detail"):
            fresh.detail = exc.detail  # type: ignore[attr-defined]
        raise fresh from None
