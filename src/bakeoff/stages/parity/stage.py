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
    _check_twins(ctx, options)
    if ctx.options.get("byo"):
        _check_user_model(ctx, options, ctx.options["byo"])


def _check_user_model(ctx: RunContext, options: parity.ParityOptions, byo: dict[str, Any]) -> None:
    """The user's own model against the twin generated from its spec (and the user's pair, when both
    sides were given): one record each, so the report and the verdict show a failure beside the rest."""
    shapes = [tuple(s) for s in byo["input_shapes"]]
    pairs = [parity.Pair(p["torch"], p["keras"], shapes) for p in byo["pairs"]]
    against = "its generated twin" + (", and your pair" if len(pairs) > 1 else "")
    ctx.progress(f"parity: your model against {against} (a worker per framework)")
    started = time.perf_counter()
    try:
        results: list[parity.ParityResult | BakeoffError] = list(
            parity.check_pairs(pairs, options, ctx.store.path / "byo-errors")
        )
    except BakeoffError as exc:
        results = [exc] * len(pairs)
    seconds = (time.perf_counter() - started) / len(pairs)
    for spec, result in zip(byo["pairs"], results, strict=True):
        what = f"{spec['torch']} ↔ {spec['keras']}"
        if isinstance(result, BakeoffError):
            ctx.record(
                make_record("parity", spec["case"], "failed", message=f"{what}: {result}", seconds=seconds)
            )
            continue
        worst = result.worst_gradient
        ctx.record(
            make_record(
                "parity",
                spec["case"],
                "ok" if result.passed else "failed",
                message=f"{what}: {result.summary()}",
                settings=result.settings,
                seconds=seconds,
                metrics={
                    "max_abs": result.output_max_abs,
                    "loss_abs_diff": result.loss_abs_diff,
                    "max_abs_gradient": worst.max_abs if worst else 0.0,
                    "first_divergent": result.first_divergent,
                    "layers": [vars(d) for d in result.layers],
                    "causes": [vars(c) for c in result.causes],
                    "notes": result.notes,
                    "measured": byo["measured"],
                },
            )
        )


def _check_twins(ctx: RunContext, options: parity.ParityOptions) -> None:
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
