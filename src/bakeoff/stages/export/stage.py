"""The export stage: every artifact made from the trained twins, verified, one record each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.stages.export.artifacts import DEFAULT_ARTIFACTS
from bakeoff.stages.export.exporter import Exporter, ExportOptions
from bakeoff.stages.export.exporter import check as check_export


def options_for(
    artifacts: list[str] | None,
    epochs: int,
    batch_size: int,
    lr: float,
    data: str | None,
    opset: int,
    quick: bool,
) -> dict[str, Any]:
    """The stage's entry in a run's options (run.json), read back by `options_of`. `artifacts` None: every
    one but the conversions. The twin is trained before export (1 epoch with --quick)."""
    return {
        "artifacts": list(DEFAULT_ARTIFACTS) if artifacts is None else artifacts,
        "epochs": 1 if quick else epochs,
        "batch_size": batch_size,
        "lr": lr,
        "data": data,
        "opset": opset,
    }


def options_of(options: dict[str, Any]) -> ExportOptions:
    export = dict(options.get("export", {}))
    if "artifacts" in export:
        export["artifacts"] = tuple(export["artifacts"])
    return ExportOptions(threads=options["threads"], seed=options["seed"], **export)


def artifacts_root(run_dir: Path) -> Path:
    return run_dir / "artifacts"


def check(graph: Graph, options: dict[str, Any]) -> None:
    check_export(graph, options_of(options))


def run(ctx: RunContext) -> None:
    done = {case for stage, case, _ in ctx.done if stage == "export"}
    Exporter(
        ctx.graph,
        options_of(ctx.options),
        artifacts_root(ctx.store.path),
        ctx.record,
        ctx.progress,
        done=done,
    ).run()
