"""The checklist answers a verdict weighs (goal, team, deploy, hardware), gathered in one order: flags over
a --config YAML file, then what the run was started with (run.json), then a prompt or the defaults;
the hardware defaults to what the run's machine had."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bakeoff.errors import UsageError
from bakeoff.report.verdict import CHOICES, Constraints
from bakeoff.results.run import Run, load_run

# Asks for one unset answer: (key, its choices, the default) -> the answer.
Ask = Callable[[str, list[str], str], str]


def stored_constraints(run: Run) -> Constraints:
    """The constraints the run was started with (run.json), so a rebuilt report keeps its verdict; the
    hardware, unless given, is what the run's machine had."""
    values = dict(run.info.get("constraints") or {})
    values.setdefault("hardware", "gpu" if run.info.get("environment", {}).get("gpus") else "cpu")
    return Constraints.from_dict(values, f"{run.path / 'run.json'}: constraints")


def given(flags: dict[str, str | None], config: Path | None) -> dict[str, str]:
    """The answers given: flags over the config file. Unset ones stay unset."""
    values: dict[str, Any] = read_config(config) if config is not None else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    Constraints.from_dict(values, f"--config {config}" if config else "options")  # one line for a bad value
    return values


def complete(values: dict[str, str], run: Run, ask: Ask | None) -> Constraints:
    """Fills what is unset from what the run stored, then by `ask` (when given), else with the defaults;
    hardware defaults to what the run's machine had."""
    stored = run.info.get("constraints") or {}
    fallback = stored_constraints(run).to_dict()
    merged: dict[str, Any] = {**stored, **values}
    for key, choices in CHOICES.items():
        if key not in merged:
            merged[key] = ask(key, list(choices), fallback[key]) if ask else fallback[key]
    return Constraints.from_dict(merged, "options")


def for_run(
    run_dir: Path, flags: dict[str, str | None], config: Path | None, ask: Ask | None
) -> tuple[Run, Constraints]:
    """The run in `run_dir` and the constraints its verdict is weighed for."""
    run = load_run(run_dir)
    return run, complete(given(flags, config), run, ask)


def read_config(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"--config {path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected keys goal, team, deploy, hardware")
    return data
