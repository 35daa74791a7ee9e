"""A finished or half-finished run read back from its directory: run.json plus the newest record per case.

Reports, recommendations, history and tracking all start here, so each bad directory gets one
clear error in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakeoff.errors import UsageError
from bakeoff.results.store import SCHEMA_VERSION, RunStore, newest


@dataclass(frozen=True)
class Run:
    path: Path
    info: dict[str, Any]
    records: list[dict[str, Any]]  # every record, in the order written (a resumed case appears twice)
    skipped: tuple[int, ...] = ()  # records.jsonl lines that hold no record (torn, damaged, not ours)

    @property
    def skipped_note(self) -> str:
        """One line for the reader when lines were skipped; empty when none were."""
        if not self.skipped:
            return ""
        shown = ", ".join(map(str, self.skipped[:5])) + (", ..." if len(self.skipped) > 5 else "")
        where = self.path / "records.jsonl"
        return f"{where}: skipped {len(self.skipped)} line(s) that hold no record ({shown})"

    @property
    def latest(self) -> list[dict[str, Any]]:
        return newest(self.records)

    def stage(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.latest if r["stage"] == name]

    def case(self, stage: str, case: str) -> dict[str, Any] | None:
        found = [r for r in self.stage(stage) if r["case"] == case]
        return found[-1] if found else None

    @property
    def train_timing(self) -> dict[str, Any] | None:
        """The training modes' timing rounds (measure.rounds.of_mode), where the run has them."""
        summary = self.case("train", "summary")
        return None if summary is None else summary.get("metrics", {}).get("timing")

    @property
    def model(self) -> str:
        return str(self.info.get("model", "?"))

    @property
    def task(self) -> str:
        """classification or regression (the spec's task): says whether a stored validation score is an
        accuracy or the negated MSE."""
        return str(((self.info.get("spec") or {}).get("task") or {}).get("type") or "classification")

    @property
    def finished(self) -> bool:
        return "finished_at" in self.info

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.latest if r["status"] == "failed"]

    @property
    def missing(self) -> list[str]:
        """Stages the run asked for that left no record: the run stopped before (or while) reaching them."""
        seen = {r["stage"] for r in self.records}
        return [s for s in self.info.get("stages", []) if s not in seen]


def load_run(path: Path) -> Run:
    """Reads RUN_DIR, refusing (one line) anything that is not a run this version can read."""
    if not path.is_dir():
        raise UsageError(
            f"{path}: no such directory (runs live under bakeoff-runs/; `bakeoff runs` lists them)"
        )
    info_path = path / "run.json"
    if not info_path.is_file():
        raise UsageError(f"{path}: not a bakeoff run directory (no run.json); `bakeoff runs` lists runs")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{info_path}: damaged, not JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise UsageError(f"{info_path}: damaged, expected a JSON object")
    _check_schema(info.get("schema"), f"{info_path}")
    numbered, skipped = RunStore(path).read_records()
    if not numbered and skipped:
        raise UsageError(f"{path}/records.jsonl: none of its {len(skipped)} line(s) is a record: damaged")
    if not numbered:
        raise UsageError(
            f"{path}: no records yet: the run stopped before its first case finished "
            f"(`bakeoff run --resume {path}` runs it)"
        )
    for number, record in numbered:
        _check_schema(record.get("schema"), f"{path}/records.jsonl:{number}")
    return Run(path, info, [r for _, r in numbered], tuple(skipped))


def _check_schema(found: Any, where: str) -> None:
    if found is None:
        raise UsageError(
            f"{where}: no record-format stamp: written by an older bakeoff than this one reads "
            f"(format {SCHEMA_VERSION}); re-run `bakeoff run` with this version"
        )
    if found != SCHEMA_VERSION:
        raise UsageError(
            f"{where}: record format {found!r} is not the format this bakeoff reads ({SCHEMA_VERSION}); "
            "re-run `bakeoff run` with this version"
        )
