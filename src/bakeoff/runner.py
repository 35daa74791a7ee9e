"""`bakeoff run`: make a run directory, capture the environment, run the chosen stages in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakeoff import __version__
from bakeoff.errors import UsageError
from bakeoff.measure.env import capture, physical_cores
from bakeoff.results.store import RunStore, make_record
from bakeoff.spec.flops import count_flops, count_params
from bakeoff.spec.load import resolve
from bakeoff.stages import STAGES
from bakeoff.stages.context import RunContext


@dataclass
class RunOutcome:
    path: Path
    records: list[dict[str, Any]]
    seconds: float
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "failed"]


def run_stages(
    model: str, out: Path, stages: list[str], options: dict[str, Any], progress: Callable[[str], None]
) -> RunOutcome:
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UsageError(
            f"--stages: unknown stage(s) {', '.join(unknown) or '(none given)'}; "
            f"available: {', '.join(STAGES)}"
        )
    graph = resolve(model)
    options = {**options, "threads": options.get("threads") or physical_cores()}
    store = RunStore.create(out, graph.spec.name)
    progress(f"run directory {store.path}")
    store.write_run(
        {
            "bakeoff": __version__,
            "model": graph.spec.name,
            "spec": graph.spec.model_dump(mode="json"),
            "params": count_params(graph),
            "flops_per_sample": count_flops(graph),
            "stages": stages,
            "options": options,
            "environment": capture(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    ctx = RunContext(graph, store, options, progress)
    started = time.perf_counter()
    for stage in stages:
        t0 = time.perf_counter()
        try:
            STAGES[stage](ctx)
        except Exception as exc:  # one broken stage is recorded; the stages after it still run
            ctx.record(
                make_record(
                    stage,
                    "stage",
                    "failed",
                    message=f"{type(exc).__name__}: {exc}",
                    seconds=time.perf_counter() - t0,
                )
            )
    return RunOutcome(store.path, store.records(), time.perf_counter() - started, ctx.results)
