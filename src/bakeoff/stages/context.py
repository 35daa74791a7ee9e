"""What every stage gets: the model graph, the run directory to append records to, the options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakeoff.results.store import RunStore
from bakeoff.spec.graph import Graph


def _quiet(line: str) -> None:
    pass


@dataclass
class RunContext:
    graph: Graph
    store: RunStore
    options: dict[str, Any]
    # Called with a short line as each case starts, so the CLI can show progress.
    progress: Callable[[str], None] = _quiet
    # Rich results of this process's stages, for the terminal summary; records hold the same numbers.
    results: dict[str, Any] = field(default_factory=dict)
    # (stage, case) pairs that finished ok in an earlier attempt of this run: --resume skips them.
    done: set[tuple[str, str]] = field(default_factory=set)

    def record(self, record: dict[str, Any]) -> None:
        self.store.append(record)

    def latest(self, stage: str) -> list[dict[str, Any]]:
        """The newest record of each case of a stage, this attempt's and earlier ones'."""
        newest: dict[tuple[str, str | None], dict[str, Any]] = {}
        for record in self.store.records():
            if record["stage"] == stage:
                newest[(record["case"], record["framework"])] = record
        return list(newest.values())
