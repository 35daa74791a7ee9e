"""The input-pipeline stage: DataLoader against tf.data on PNG decode + augment, and whether training
the run's model is input-bound."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bakeoff.data.datasets import takes_digits
from bakeoff.spec.graph import Graph
from bakeoff.spec.load import resolve
from bakeoff.stages.context import RunContext
from bakeoff.stages.pipeline.pipelines import run_pipelines
from bakeoff.twins.canonical import canonical_weights, save_weights

# Enough passes for a median with spread, small enough for the whole default run to stay near a minute.
DEPTH = {"full": {"batches": 30, "epochs": 5}, "quick": {"batches": 6, "epochs": 2}}


def check(graph: Graph, options: dict[str, Any]) -> None:
    """Nothing to check: the workload is MNIST, shipped with the package."""


def training_graph(graph: Graph) -> Graph:
    """The run's model when it takes 28x28 digits; otherwise lenet, so the check still means something."""
    return graph if takes_digits(graph) else resolve("lenet")


def run(ctx: RunContext) -> None:
    if ctx.done and ctx.finished("pipeline"):  # the runner has said what it keeps
        return
    depth = DEPTH["quick" if ctx.options.get("quick") else "full"]
    batch = ctx.options.get("train", {}).get("batch_size", 64)
    lr = ctx.options.get("train", {}).get("lr", 1e-3)
    with tempfile.TemporaryDirectory(prefix="bakeoff-pipeline-") as tmp:
        graph = training_graph(ctx.graph)
        save_weights(canonical_weights(graph, ctx.options["seed"]), Path(tmp) / "weights.npz")
        train = {
            "spec": graph.spec.model_dump(mode="json"),
            "weights": str(Path(tmp) / "weights.npz"),
            "lr": lr,
        }
        run_pipelines(
            Path(tmp),
            batch=batch,
            threads=ctx.options["threads"],
            seed=ctx.options["seed"],
            progress=ctx.progress,
            train=train,
            batches=depth["batches"],
            epochs=depth["epochs"],
            on_record=ctx.record,  # each case is recorded as it finishes
        )
