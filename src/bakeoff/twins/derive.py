"""One model is enough: derive a spec from the user's torch or Keras model (in that framework's worker),
write the other framework's twin as source code, and pair the two for the BYO parity check.

The files land in a folder the user keeps (spec.yaml, twin_keras.py or twin_torch.py): the spec runs
with `bakeoff run spec.yaml`, the twin is plain code to read or copy.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bakeoff.errors import PairError, SpecError
from bakeoff.measure.env import physical_cores
from bakeoff.spec.codegen import keras_code, torch_code
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.load import from_dict
from bakeoff.twins.byo import parse_ref
from bakeoff.twins.parity import Pair, _run

OTHER = {"torch": "keras", "keras": "torch"}


@dataclass(frozen=True)
class Derived:
    source: str  # the user's side: torch or keras
    user_ref: str
    graph: Graph
    folder: Path
    notes: list[str] = field(default_factory=list)

    @property
    def twin(self) -> str:
        return OTHER[self.source]

    @property
    def spec_path(self) -> Path:
        return self.folder / "spec.yaml"

    @property
    def twin_path(self) -> Path:
        return self.folder / f"twin_{self.twin}.py"

    @property
    def twin_ref(self) -> str:
        return f"{self.twin_path}:model"  # the generated code ends in `model = ...`

    def pair(self, input_shapes: list[tuple[int, ...]], match_defaults: bool = False) -> Pair:
        """The user's model against its generated twin, torch side first as BYO pairs are."""
        if self.source == "torch":
            return Pair(self.user_ref, self.twin_ref, input_shapes, match_defaults)
        return Pair(self.twin_ref, self.user_ref, input_shapes, match_defaults)

    def moved(self, folder: Path) -> Derived:
        """The same files under `folder` (a run directory keeps its own copy)."""
        folder.mkdir(parents=True, exist_ok=True)
        for path in (self.spec_path, self.twin_path):
            (folder / path.name).write_text(path.read_text())
        return Derived(self.source, self.user_ref, self.graph, folder, self.notes)


@dataclass(frozen=True)
class Wanted:
    """One model to derive: FILE.py:NAME, its framework, its input shapes channels-last, where to write."""

    ref: str
    framework: str
    input_shapes: list[tuple[int, ...]]
    folder: Path


def derive(
    ref: str, framework: str, input_shapes: list[tuple[int, ...]], folder: Path, threads: int | None = None
) -> Derived:
    """The spec of the model at `ref` (FILE.py:NAME, `framework` torch or keras), shapes channels-last;
    writes spec.yaml and the other framework's twin into `folder`. One line per unsupported op."""
    (result,) = derive_many([Wanted(ref, framework, input_shapes, folder)], threads)
    if isinstance(result, PairError):
        raise result
    return result


def derive_many(wanted: list[Wanted], threads: int | None = None) -> list[Derived | PairError]:
    """Several models with one worker per framework, side by side; a model that cannot be derived
    gives its PairError and the others still go on."""
    requests = []
    for framework in ("torch", "keras"):
        models = [
            {
                "ref": w.ref,
                "name": parse_ref(w.ref, f"--{framework}")[1],
                "input_shapes": [list(s) for s in w.input_shapes],
            }
            for w in wanted
            if w.framework == framework
        ]
        if models:
            requests.append(
                {
                    "job": "derive",
                    "framework": framework,
                    "models": models,
                    "threads": threads or physical_cores(),
                }
            )
    with tempfile.TemporaryDirectory(prefix="bakeoff-derive-") as tmp:
        results = _run(requests, Path(tmp))
    entries = {f: iter(r.meta["pairs"]) for f, r in results.items()}
    out: list[Derived | PairError] = []
    for w in wanted:
        entry = next(entries[w.framework])
        if "error" in entry:
            error = PairError(f"{w.framework}: {entry['error']}")
            error.detail = entry.get("detail", "")
            out.append(error)
            continue
        try:
            out.append(write_derived(w, entry["spec"]))
        except PairError as exc:
            out.append(exc)
    return out


def write_derived(w: Wanted, data: dict[str, object]) -> Derived:
    """spec.yaml and the twin's code from a derived spec (`data`), written into `w.folder`."""
    flag = f"--{w.framework}"
    try:
        graph = build_graph(from_dict(data, source=f"the spec derived from {flag} {w.ref}"))
    except SpecError as exc:
        raise PairError(f"{flag} {w.ref!r}: the derived spec does not hold together: {exc}") from exc
    folder = w.folder
    folder.mkdir(parents=True, exist_ok=True)
    spec = graph.spec.model_dump(mode="json", exclude_none=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    code = keras_code(graph) if w.framework == "torch" else torch_code(graph)
    twin = OTHER[w.framework]
    header = f"# The {twin} twin bakeoff generated from {flag} {w.ref}\n# (its spec: spec.yaml beside it)\n"
    (folder / f"twin_{twin}.py").write_text(header + code)
    note = (
        f"derived a spec of {len(graph.nodes)} layers from {flag} {w.ref}; generated the {twin} twin "
        f"{folder / f'twin_{twin}.py'}"
    )
    return Derived(w.framework, w.ref, graph, folder, [note])
