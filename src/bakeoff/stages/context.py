"""What every stage gets: the model graph, the run directory to append records to, the options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakeoff.results.store import RunStore, newest
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
    # (stage, case, framework) of cases whose latest record is ok: --resume skips them.
    done: set[tuple[str, str, str | None]] = field(default_factory=set)

    def record(self, record: dict[str, Any]) -> None:
        self.store.append(record)

    def finished(self, stage: str) -> bool:
        """Every case of `stage` ended ok in an earlier attempt (stages redone as a whole use this)."""
        cases = self.latest(stage)
        return bool(cases) and all(r["status"] == "ok" for r in cases)

    def latest(self, stage: str) -> list[dict[str, Any]]:
        """The newest record of each case of a stage, this attempt's and earlier ones'."""
        return [r for r in newest(self.store.records()) if r["stage"] == stage]
