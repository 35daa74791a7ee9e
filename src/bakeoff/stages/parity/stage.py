"""The parity stage: do the twins compute the same thing? One record per check."""

from __future__ import annotations

import time
from typing import Any

from bakeoff.errors import BakeoffError
from bakeoff.results.store import make_record
from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.twins import parity


def check(graph: Graph, options: dict[str, Any]) -> None:
    _options(options)


def _options(options: dict[str, Any]) -> parity.ParityOptions:
    # threads and seed are the run's, shared by every stage; the tolerances and batch are parity's own.
    return parity.ParityOptions(threads=options["threads"], seed=options["seed"], **options["parity"])


def run(ctx: RunContext) -> None:
    if ctx.done and ctx.finished("parity"):  # the runner has said what it keeps
        return
    options = _options(ctx.options)
    ctx.progress("parity: building both twins from one weight set (a worker per framework)")
    started = time.perf_counter()
    try:
        result = parity.check(ctx.graph, options)
    except BakeoffError as exc:
        ctx.record(
            # Filed under "outputs", so a resumed run's success replaces it.
            make_record(
                "parity", "outputs", "failed", message=str(exc), seconds=time.perf_counter() - started
            )
        )
        return
    seconds = time.perf_counter() - started
    ctx.results["parity"] = result
    ctx.record(
        make_record(
            "parity",
            "outputs",
            "ok" if result.output_max_abs <= options.atol else "failed",
            message=result.summary(),
            settings=result.settings,
            seconds=seconds,
            metrics={
                "max_abs": result.output_max_abs,
                "max_rel": result.output_max_rel,
                "loss": result.loss,
                "loss_abs_diff": result.loss_abs_diff,
                "params": result.params,
                "frameworks": result.frameworks,
            },
        )
    )
    ctx.record(
        make_record(
            "parity",
            "layers",
            "ok" if result.first_divergent is None else "failed",
            message=f"first divergent layer: {result.first_divergent}" if result.first_divergent else "",
            settings=result.settings,
            metrics={
                "first_divergent": result.first_divergent,
                "layers": [vars(d) for d in result.layers],
                "causes": [vars(c) for c in result.causes],
                "notes": result.notes,
            },
        )
    )
    worst = result.worst_gradient
    ctx.record(
        make_record(
            "parity",
            "gradients",
            "ok" if all(d.ok for d in result.gradients) else "failed",
            settings=result.settings,
            metrics={
                "max_abs": worst.max_abs if worst else 0.0,
                "gradients": [vars(d) for d in result.gradients],
            },
        )
    )
