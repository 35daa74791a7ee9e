"""The debug stage's orchestration: the data and weights both frameworks get, one worker per framework
for the planted faults (one after the other: the tools' overhead is timed), then the pdb/print probe."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.measure.isolation import run_workers
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
    graph: Graph, options: DebugOptions, progress: Callable[[str], None] = lambda _: None
) -> dict[str, list[tuple[str, str, str, dict[str, Any]]]]:
    """framework -> [(fault, tool, mode, columns)], or a single ('', '', '', {'error': ...}) when the
    framework's worker failed as a whole."""
    out: dict[str, list[tuple[str, str, str, dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bakeoff-debug-") as tmp:
        workdir = Path(tmp)
        files = prepare(graph, options, workdir)
        for framework in ("torch", "keras"):
            cases = shared.cases(framework, options)
            if not cases:
                continue
            progress(f"debug: {len(cases)} planted-fault cases in a {framework} worker")
            request = {
                "job": "debug",
                "framework": framework,
                "spec": graph.spec.model_dump(mode="json"),
                "threads": options.threads,
                "cases": cases,
                **files,
            }
            (result,) = run_workers([request], workdir / framework, timeout=options.timeout, fresh=True)
            if result.ok:
                out[framework] = [tuple(c) for c in result.meta["cases"]]
            else:
                out[framework] = [("", "", "", {"error": result.error})]
    return out


def overheads(rows: list[tuple[str, str, str, dict[str, Any]]]) -> dict[tuple[str, str], float | None]:
    """(tool, mode) -> median clean step time with the tool over the same without one (the numeric
    faults' steps before the fault step, where no fault acts yet)."""
    clean: dict[tuple[str, str], list[float]] = {}
    for fault, tool, mode, columns in rows:
        if fault in shared.NUMERIC or tool == "run_functions_eagerly":
            clean.setdefault((tool, mode), []).extend(columns.get("clean_times", []))
    out: dict[tuple[str, str], float | None] = {}
    for (tool, mode), times in clean.items():
        base = clean.get(("none", mode), [])
        out[(tool, mode)] = float(np.median(times) / np.median(base)) if times and base else None
    return out
