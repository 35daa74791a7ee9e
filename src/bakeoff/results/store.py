"""A run directory: run.json (what ran, where) and records.jsonl (one line per finished case).

Each record is appended and flushed as its case finishes, so a killed run keeps everything that
had finished and a report can be built from any prefix of the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bakeoff.errors import UsageError

SCHEMA_VERSION = 1


def make_record(
    stage: str,
    case: str,
    status: str,
    *,
    framework: str | None = None,
    message: str = "",
    metrics: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """What ran (stage, case, framework, settings), what came out (metrics) and how it ended."""
    if status not in ("ok", "failed"):
        raise ValueError(f"status must be 'ok' or 'failed', got {status!r}")
    return {
        "schema": SCHEMA_VERSION,
        "stage": stage,
        "case": case,
        "framework": framework,
        "status": status,
        "message": message,
        "metrics": metrics or {},
        "settings": settings or {},
        "seconds": seconds,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, out_dir: Path, model: str) -> RunStore:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model).strip("-") or "model"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {out_dir}: cannot make a directory there ({exc.strerror})") from exc
        for attempt in range(1000):
            path = out_dir / (f"{stamp}-{slug}" + (f"-{attempt}" if attempt else ""))
            try:
                path.mkdir()
            except FileExistsError:
                continue
            (path / "artifacts").mkdir()
            return cls(path)
        raise RuntimeError(f"cannot create a fresh run directory under {out_dir}")

    @property
    def records_path(self) -> Path:
        return self.path / "records.jsonl"

    def write_run(self, info: dict[str, Any]) -> None:
        (self.path / "run.json").write_text(
            json.dumps({"schema": SCHEMA_VERSION, **info}, indent=2, default=str)
        )

    def update_run(self, **fields: Any) -> None:
        info = json.loads((self.path / "run.json").read_text())
        self.write_run({**info, **fields})

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(clean(record), default=_json_default, allow_nan=False) + "\n"
        with self.records_path.open("a+b") as f:
            # A run killed mid-write leaves a torn last line: end it, so this record stands on its own.
            if f.seek(0, os.SEEK_END) and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n":
                f.write(b"\n")
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict[str, Any]]:
        if not self.records_path.exists():
            return []
        lines = self.records_path.read_text(encoding="utf-8").splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill; every whole line before and after it still counts
        return out


def newest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest record per (stage, case, framework): a resumed case replaces its failure."""
    return list({(r["stage"], r["case"], r["framework"]): r for r in records}.values())


def clean(value: Any) -> Any:
    """JSON has no NaN or infinity: a difference that could not be computed is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)
