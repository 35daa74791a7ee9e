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


def check_writable(folder: Path, flag: str) -> None:
    """Makes `folder` (with its parents) and proves a file can be written there, before any work that
    would write into it starts: a read-only or impossible location is one line, not a late traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".bakeoff-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{flag} {folder}: cannot write there ({exc.strerror or exc})") from exc


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, out_dir: Path, model: str) -> RunStore:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model).strip("-") or "model"
        check_writable(out_dir, "--out")
        for attempt in range(1000):
            path = out_dir / (f"{stamp}-{slug}" + (f"-{attempt}" if attempt else ""))
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise UsageError(
                    f"--out {out_dir}: cannot make a run directory there ({exc.strerror})"
                ) from exc
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

    def read_run(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads((self.path / "run.json").read_text())
        return info

    def update_run(self, **fields: Any) -> None:
        self.write_run({**self.read_run(), **fields})

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
        return [record for _, record in self.read_records()[0]]

    def read_records(self) -> tuple[list[tuple[int, dict[str, Any]]], list[int]]:
        """The records with their line numbers, and the numbers of the lines that are not one (torn by a
        kill, damaged, not ours): every whole record before and after such a line still counts."""
        if not self.records_path.exists():
            return [], []
        out, skipped = [], []
        for number, raw in enumerate(self.records_path.read_bytes().splitlines(), 1):
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if is_record(record):
                out.append((number, record))
            elif raw.strip():
                skipped.append(number)
        return out, skipped


# What every record has, of these types; an older bakeoff's records have them too, without "schema".
RECORD_FIELDS = {"stage": str, "case": str, "status": str}


def is_record(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(k), t) for k, t in RECORD_FIELDS.items())


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
