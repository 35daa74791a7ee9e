"""The live display of `bakeoff run`: which stage and case are running, time elapsed, and an estimate of
what is left, from the stage times of the newest earlier run of the same model and depth (or rough
defaults for a first run), rescaled by how the finished stages of this run compared with it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

# Seconds per stage on a 2-core machine for simplenet, for a first run with no history to go by.
DEFAULT_SECONDS = {
    False: {"parity": 8, "train": 25, "pipeline": 15, "export": 20, "infer": 20, "debug": 120},
    True: {"parity": 5, "train": 7, "pipeline": 5, "export": 6, "infer": 5, "debug": 120},
}


def estimates(out: Path, model: str, quick: bool) -> dict[str, float]:
    """Stage seconds of the newest finished run of `model` at the same depth under `out`."""
    newest: tuple[str, dict[str, float]] | None = None
    for info_path in out.glob("*/run.json") if out.is_dir() else []:
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            continue
        seconds = info.get("stage_seconds")
        same = info.get("model") == model and bool(info.get("options", {}).get("quick")) == quick
        if same and isinstance(seconds, dict) and (newest is None or info_path.parent.name > newest[0]):
            newest = (info_path.parent.name, {k: float(v) for k, v in seconds.items()})
    return {**DEFAULT_SECONDS[quick], **(newest[1] if newest else {})}


def run_name(model: str) -> str:
    """The name a run directory gets for MODEL, to find earlier runs of it (a path names a spec file)."""
    return Path(model).stem if model.endswith((".yaml", ".yml")) else model


def resumed_plan(run_dir: Path) -> tuple[Path, str, bool, list[str]] | None:
    """(out, model, quick, stages) of a run being resumed, for the time estimate; None when run.json
    cannot tell (runner.resume itself judges run.json)."""
    try:
        info = json.loads((run_dir / "run.json").read_text())
        return run_dir.parent, str(info["model"]), bool(info["options"].get("quick")), list(info["stages"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class RunProgress:
    """Called with each progress line; `stage(name)` when a stage starts. Lines scroll above the bar."""

    def __init__(self, console: Console, stages: list[str], expected: dict[str, float]) -> None:
        self.console = console
        self.stages = stages
        self.expected = expected
        self.current: str | None = None
        self.started: dict[str, float] = {}
        self.took: dict[str, float] = {}
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[stage]}"),
            BarColumn(bar_width=20),
            TextColumn("{task.completed}/{task.total} stages"),
            TimeElapsedColumn(),
            _LeftColumn(self),
            TextColumn("[dim]{task.description}"),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("", total=len(stages), stage="starting")

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage(self, name: str) -> None:
        now = time.perf_counter()
        if self.current is not None:
            self.took[self.current] = now - self.started[self.current]
            self.progress.advance(self.task)
        if name not in self.stages:  # a resumed run names its stages only as it reaches them
            self.stages.append(name)
            self.progress.update(self.task, total=len(self.stages))
        self.current = name
        self.started[name] = now
        self.progress.update(self.task, stage=name, description="")

    def __call__(self, line: str) -> None:
        self.console.print(Text.assemble(("• ", "dim"), line))  # Text: lines quote [shapes]
        case = line.split(": ", 1)[-1]
        self.progress.update(self.task, description=case if len(case) < 70 else case[:67] + "...")

    def seconds_left(self) -> float | None:
        if self.current is None:
            return sum(self.expected.get(s, 0.0) for s in self.stages)
        # Finished stages tell how much faster or slower this machine is than the estimate.
        done = [s for s in self.took if self.expected.get(s)]
        scale = sum(self.took[s] for s in done) / sum(self.expected[s] for s in done) if done else 1.0
        index = self.stages.index(self.current)
        running = time.perf_counter() - self.started[self.current]
        left = max(self.expected.get(self.current, 0.0) * scale - running, 0.0)
        return left + scale * sum(self.expected.get(s, 0.0) for s in self.stages[index + 1 :])


class _LeftColumn(ProgressColumn):
    def __init__(self, owner: RunProgress) -> None:
        super().__init__()
        self.owner = owner

    def render(self, task: Task) -> Any:
        left = self.owner.seconds_left()
        return Text("" if left is None else f"~{left:.0f} s left", style="cyan")
