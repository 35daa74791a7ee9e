"""The training stage: every chosen mode of both frameworks, one record per mode, then a summary."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bakeoff.data.datasets import load as load_dataset
from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.stages.train.shared import TrainOptions, has_dropout
from bakeoff.stages.train.training import check_modes, check_options, run_training, summary_record


def options_of(options: dict[str, Any]) -> TrainOptions:
    train = {k: v for k, v in options["train"].items() if k != "modes"}
    return TrainOptions(threads=options["threads"], seed=options["seed"], **train)


def options_for(
    modes: list[str],
    epochs: int,
    batch_size: int,
    lr: float,
    device: str,
    data: str | None,
    compile_mode: str,
    quick: bool,
) -> dict[str, Any]:
    """The stage's entry in a run's options (run.json), read back by `options_of`; --quick trains one
    epoch, probes the matmul peak briefly and skips the timing rounds (it decides no training claim)."""
    return {
        "modes": modes,
        "epochs": 1 if quick else epochs,
        "batch_size": batch_size,
        "lr": lr,
        "device": device,
        "data": data,
        "compile_mode": compile_mode,
        # --quick: two dozen steps per epoch, on the first samples of the shuffled training split.
        **(
            {
                "peak_seconds": 0.1,
                "train_samples": 24 * batch_size,
                "timing_rounds": 0,
            }
            if quick
            else {}
        ),
    }


def check(graph: Graph, options: dict[str, Any]) -> None:
    opts = options_of(options)
    check_modes(list(options["train"]["modes"]))
    check_options(graph, opts, load_dataset(graph, opts.data, opts.seed))


def run(ctx: RunContext) -> None:
    done = {case for stage, case, _ in ctx.done if stage == "train"}
    with tempfile.TemporaryDirectory(prefix="bakeoff-train-") as tmp:
        _, timing = run_training(
            ctx.graph,
            list(ctx.options["train"]["modes"]),
            options_of(ctx.options),
            Path(tmp),
            ctx.record,
            ctx.progress,
            skip=done,
        )
    task = ctx.graph.spec.task.type
    summary = summary_record(ctx.latest("train"), dropout=has_dropout(ctx.graph), task=task, timing=timing)
    if summary:
        ctx.record(summary)
