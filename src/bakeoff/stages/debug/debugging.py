"""The debug stage's orchestration: the data and weights both frameworks get, one worker per framework
for the planted faults (one after the other: the tools' overhead is timed), then the pdb/print probe."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from bakeoff.measure.isolation import WorkerResult, run_cases
from bakeoff.npz import save_arrays
from bakeoff.spec.graph import Graph
from bakeoff.stages.debug import shared
from bakeoff.stages.debug.shared import BATCH, DebugOptions
from bakeoff.twins.canonical import canonical_weights, save_weights
from bakeoff.twins.parity import make_batch


def prepare(graph: Graph, options: DebugOptions, workdir: Path) -> dict[str, str]:
    """One weight set and one data set for every case of both frameworks."""
    weights = workdir / "weights.npz"
    save_weights(canonical_weights(graph, options.seed), weights)
    samples = BATCH * (shared.FAULT_STEP + shared.AFTER_STEPS)
    inputs, target = make_batch(graph, samples, options.seed)
    data = workdir / "data.npz"
    save_arrays(data, {"y": target, **{f"x/{i}": x for i, x in enumerate(inputs)}})
    return {"weights": str(weights), "data": str(data)}


def run_faults(
    graph: Graph,
    options: DebugOptions,
    on_case: Callable[[str, str, WorkerResult], None],
    progress: Callable[[str], None] = lambda _: None,
    done: frozenset[str] = frozenset(),
) -> None:
    """Runs every (fault, tool, mode) case in its framework's worker, one framework after the other (the
    tools' overhead is timed); `on_case(framework, 'fault/tool/mode', result)` as each one finishes (those
    in `done` are left out). A
    case that hangs past the timeout is reported failed and a fresh worker goes on with the rest."""
    with tempfile.TemporaryDirectory(prefix="bakeoff-debug-") as tmp:
        workdir = Path(tmp)
        files = prepare(graph, options, workdir)
        for framework in ("torch", "keras"):
            cases = [shared.case_name(*c) for c in shared.cases(framework, options)]
            cases = [c for c in cases if c not in done]  # --resume keeps the finished ones
            if not cases:
                continue
            progress(f"debug: {len(cases)} planted-fault cases in a {framework} worker")
            request = {
                "job": "debug",
                "framework": framework,
                "spec": graph.spec.model_dump(mode="json"),
                "threads": options.threads,
                **files,
            }
            run_cases(
                request, cases, workdir, case_timeout=options.timeout, on_case=_tagged(on_case, framework)
            )


def _tagged(
    on_case: Callable[[str, str, WorkerResult], None], framework: str
) -> Callable[[str, WorkerResult], None]:
    return lambda case, result: on_case(framework, case, result)
