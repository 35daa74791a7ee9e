"""The inference stage: every verified artifact in every runtime that runs it, at each batch size."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bakeoff.errors import UsageError
from bakeoff.measure import DEFAULT_MARGIN
from bakeoff.measure.env import gpus
from bakeoff.results.store import make_record
from bakeoff.runtimes import DEFAULT_RUNTIMES, RUNTIMES, check_runtimes
from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.stages.export.exporter import exported_ok, job_request
from bakeoff.stages.export.stage import artifacts_root
from bakeoff.stages.infer.inference import InferOptions, cases_for, run_inference, summary_record


def options_for(runtimes: list[str] | None, batch_sizes: list[int], quick: bool) -> dict[str, Any]:
    """The stage's entry in a run's options (run.json), read back by `options_of`. `runtimes` None: every
    one but Keras on other backends (--backends adds those). --quick times batch 1 and the largest batch,
    briefly, in 3 rounds of the same workers, and adds no rounds for undecided comparisons."""
    sizes = [min(batch_sizes), max(batch_sizes)] if quick and len(batch_sizes) > 2 else batch_sizes
    return {
        "runtimes": list(DEFAULT_RUNTIMES) if runtimes is None else runtimes,
        "batch_sizes": sizes,
        **(
            {
                "min_time": 0.02,
                "max_time": 0.05,
                "max_runs": 100,
                "rounds": 3,
                "restart_workers": False,
                "decide_rounds": 0,
            }
            if quick
            else {}
        ),
    }


def options_of(options: dict[str, Any]) -> InferOptions:
    infer: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in options.get("infer", {}).items()
    }
    return InferOptions(**infer)


def check(graph: Graph, options: dict[str, Any]) -> None:
    opts = options_of(options)
    check_runtimes(list(opts.runtimes))
    if not opts.batch_sizes or min(opts.batch_sizes) < 1:
        raise UsageError(f"--batch-sizes {opts.batch_sizes}: give positive integers, e.g. 1,8,64,256")
    if opts.rounds < 1:
        raise UsageError(f"infer rounds {opts.rounds}: at least 1")


def run(ctx: RunContext) -> None:
    opts = options_of(ctx.options)
    gpu = bool(gpus())
    root = artifacts_root(ctx.store.path)
    exported = exported_ok(ctx.store.records())
    if not exported:
        ctx.record(
            make_record(
                "infer", "stage", "failed", message="no verified artifact to run: the export stage made none"
            )
        )
        return
    settings = opts.settings(ctx.options["threads"], gpu)
    done = {case for stage, case, _ in ctx.done if stage == "infer"}
    cases: list[str] = []
    for name in opts.runtimes:
        runtime = RUNTIMES[name]
        if runtime.gpu and not gpu:
            ctx.progress(f"infer: {name} skipped: needs a CUDA GPU, this machine has none")
            continue
        mine = [c for c in cases_for(runtime, exported) if c not in done]
        if mine and runtime.missing():  # only a runtime that had work to do is missed
            ctx.record(
                make_record("infer", name, "failed", framework=runtime.worker, message=runtime.missing())
            )
            continue
        cases += mine
    ctx.progress(f"infer: {len(cases)} case(s), batch sizes {', '.join(map(str, opts.batch_sizes))}")

    def on_record(record: dict[str, Any]) -> None:
        ctx.record(record)
        ctx.progress(f"infer: {record['case']} {record['status']} {record['message']}")

    with tempfile.TemporaryDirectory(prefix="bakeoff-infer-") as jobs:
        run_inference(
            job_request(ctx.graph, root, ctx.options["threads"]),
            cases,
            opts,
            settings,
            Path(jobs),
            on_record,
            ctx.progress,
            float(ctx.options.get("margin", DEFAULT_MARGIN)),
        )
    summary = summary_record(ctx.latest("infer"))
    if summary:
        ctx.record(summary)
