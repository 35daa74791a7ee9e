"""The stages of `bakeoff run`, in order. A new stage is one package under `stages/` whose `stage.py` has
`check` and `run`, and one line here.

`check(graph, options)` runs before the run directory exists and raises UsageError for bad options,
so a mistake costs nothing; `run(ctx)` appends records as its cases finish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bakeoff.spec.graph import Graph
from bakeoff.stages.backends import stage as backends
from bakeoff.stages.context import RunContext
from bakeoff.stages.debug import stage as debug
from bakeoff.stages.distributed import stage as distributed
from bakeoff.stages.export import stage as export
from bakeoff.stages.infer import stage as infer
from bakeoff.stages.parity import stage as parity
from bakeoff.stages.pipeline import stage as pipeline
from bakeoff.stages.serve import stage as serve
from bakeoff.stages.train import stage as train


@dataclass(frozen=True)
class Stage:
    run: Callable[[RunContext], None]
    check: Callable[[Graph, dict[str, Any]], None]
    needs: tuple[str, ...] = ()  # stages whose records this one reads: they run first, in the same run


STAGES: dict[str, Stage] = {
    "parity": Stage(parity.run, parity.check),
    "backends": Stage(backends.run, backends.check),
    "train": Stage(train.run, train.check),
    "pipeline": Stage(pipeline.run, pipeline.check),
    "export": Stage(export.run, export.check),
    "infer": Stage(infer.run, infer.check, needs=("export",)),
    # Not in `bakeoff run`'s default stages: it starts four servers and loads each for minutes.
    "serve": Stage(serve.run, serve.check, needs=("export",)),
    "distributed": Stage(distributed.run, distributed.check),
    # Opt-in (`bakeoff debug`, or --stages ...,debug): not in `bakeoff run`'s default stages.
    "debug": Stage(debug.run, debug.check),
}
