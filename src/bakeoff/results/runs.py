"""Lists the runs under a folder (`bakeoff runs`): one row per run with how it ended, where it ran and its
headline numbers.

Only records are read (no framework is imported), so listing is instant and works on half-finished and
damaged runs. What a row reads off a run (`was_quick`, `machine_summary`, `parity_diff`, `timed_cases`)
serves `bakeoff compare` as well.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bakeoff.errors import UsageError
from bakeoff.results.run import Run, load_run
from bakeoff.results.store import SCHEMA_VERSION, RunStore, clean

# Records that are summaries of other records, not cases of their own.
_DERIVED_CASES = {"summary", "fit", "reference", "stage", "input-bound", "same augmentation", "peak"}


@dataclass(frozen=True)
class RunRow:
    """One line of `bakeoff runs`: what ran, where, how it ended and its headline numbers."""

    run_id: str
    path: Path
    model: str
    started_at: str | None
    machine: str
    quick: bool | None
    status: str  # "finished", "finished, 2 failed", "stopped at train", "no records", "unreadable: ..."
    finished: bool
    failed: int
    records: int
    # Fastest training mode by median step time: {"mode", "samples_per_s"}.
    train: dict[str, Any] | None = None
    # Fastest inference case at the smallest batch (1 normally): {"case", "batch", "p50_ms"}.
    infer_small: dict[str, Any] | None = None
    # Fastest inference case at the largest batch: {"case", "batch", "samples_per_s"}.
    infer_large: dict[str, Any] | None = None
    parity_max_abs: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "path": str(self.path),
            "model": self.model,
            "started_at": self.started_at,
            "machine": self.machine,
            "quick": self.quick,
            "status": self.status,
            "finished": self.finished,
            "failed": self.failed,
            "records": self.records,
            "train": self.train,
            "infer_small": self.infer_small,
            "infer_large": self.infer_large,
            "parity_max_abs": self.parity_max_abs,
        }


def list_runs(root: Path) -> list[RunRow]:
    """Every run directory directly under `root`, newest first. A folder without run.json is skipped;
    a run without records, a stopped run or a damaged one gets a row saying so. A missing `root` has
    no runs."""
    if not root.exists():
        return []
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory (runs live in a folder such as bakeoff-runs/)")
    rows = [_row(p) for p in sorted(root.iterdir()) if p.is_dir() and (p / "run.json").is_file()]
    return sorted(rows, key=_newest_first, reverse=True)


def runs_json(rows: Iterable[RunRow]) -> list[dict[str, Any]]:
    """Strict JSON (NaN as null) for `bakeoff runs --json`."""
    return [clean(r.to_dict()) for r in rows]


def _newest_first(row: RunRow) -> tuple[float, str]:
    when = _parse_time(row.started_at)
    # Run ids start with their creation stamp, so the name breaks ties and orders undated runs.
    return (when.timestamp() if when else float("-inf"), row.run_id)


def _parse_time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(stamp, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _row(path: Path) -> RunRow:
    try:
        return _row_of(load_run(path))
    except UsageError as exc:
        info = _read_info(path)
        if info is not None and info.get("schema") == SCHEMA_VERSION and not RunStore(path).records():
            return _row_of(Run(path, info, []))  # started, but stopped before its first case finished
        problem = str(exc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # One hand-edited or truncated record must not take the whole listing down.
        info, problem = _read_info(path), f"a record lacks or mangles a field ({type(exc).__name__}: {exc})"
    # A damaged run.json or records of another format: a row says so instead of hiding the run.
    info = info or {}
    return RunRow(
        run_id=path.name,
        path=path,
        model=str(info.get("model", "?")),
        started_at=info.get("started_at"),
        machine=machine_summary(info.get("environment") or {}),
        quick=was_quick(info),
        status=f"unreadable: {problem}",
        finished=False,
        failed=0,
        records=0,
    )


def _read_info(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


# What a --quick run shows but does not decide (the verdict's training and inference dimensions, the
# claims of these stages), and why. Five A/A quick runs of simplenet on a quiet 2-core machine moved
# keras-xla's training step from 2.9 to 5.0 ms and TensorFlow's inference lead from 1.02x to 1.39x, each
# run's interval far narrower. Full runs decide them, though on a shared VM a close call still needs a
# repeated full run (docs/measurement.md has the A/A full runs).
QUICK_UNDECIDED_STAGES = ("train", "infer")
QUICK_WHY = (
    "a --quick run times each contender in one short stretch of one process, which cannot show how far "
    "the next run moves (between quick runs, more than the margin); run without --quick to decide"
)


def was_quick(info: dict[str, Any]) -> bool | None:
    """Whether run.json's options say --quick; None where they do not say."""
    quick = (info.get("options") or {}).get("quick")
    return bool(quick) if quick is not None else None


def _row_of(run: Run) -> RunRow:
    failed = len(run.failed)
    return RunRow(
        run_id=run.path.name,
        path=run.path,
        model=run.model,
        started_at=run.info.get("started_at"),
        machine=machine_summary(run.info.get("environment") or {}),
        quick=was_quick(run.info),
        status=run_status(run),
        finished=run.finished,
        failed=failed,
        records=len(run.records),
        train=_fastest_training(run),
        infer_small=_fastest_inference(run, largest=False),
        infer_large=_fastest_inference(run, largest=True),
        parity_max_abs=parity_diff(run),
    )


def run_status(run: Run) -> str:
    """How a run ended, in words: finished, stopped at <stage> (the last stage that wrote a record) or
    no records; then ", N failed" when cases failed."""
    if not run.records:
        return "no records"
    if run.finished:
        status = "finished"
    else:
        seen = [r["stage"] for r in run.records]
        order = [s for s in run.info.get("stages", []) if s in seen] or seen
        status = f"stopped at {order[-1]}"
    failed = len(run.failed)
    return f"{status}, {failed} failed" if failed else status


def machine_summary(env: dict[str, Any]) -> str:
    """What a timing depends on, in one cell: CPU model, cores, GPUs (or "no GPU"), host name."""
    if not env:
        return "?"
    gpus = Counter(str(g.get("name", "?")) for g in env.get("gpus") or [])
    gpu = ", ".join(f"{n}x {name}" if n > 1 else name for name, n in gpus.items()) or "no GPU"
    cores = env.get("physical_cores")
    parts = [
        str(env.get("cpu", "?")),
        f"{cores} cores" if cores else "? cores",
        gpu,
        str(env.get("hostname", "?")),
    ]
    return ", ".join(parts)


def _fastest_training(run: Run) -> dict[str, Any] | None:
    modes = [r for r in timed_cases(run, "train") if "step_s" in r["metrics"]]
    if not modes:
        return None
    best = min(modes, key=lambda r: r["metrics"]["step_s"]["median"])
    return {"mode": best["case"], "samples_per_s": best["metrics"]["samples_per_s"]["median"]}


def _fastest_inference(run: Run, *, largest: bool) -> dict[str, Any] | None:
    cases = [r for r in timed_cases(run, "infer") if r["metrics"].get("batches")]
    sizes = {int(b) for r in cases for b in r["metrics"]["batches"]}
    if not sizes:
        return None
    size = max(sizes) if largest else min(sizes)
    have = [r for r in cases if str(size) in r["metrics"]["batches"]]
    # As in the infer stage's summary: an artifact that fails its accuracy gate is never the fastest.
    eligible = [r for r in have if r["metrics"].get("gate") != "fail"] or have
    best = min(eligible, key=lambda r: r["metrics"]["batches"][str(size)]["stats"]["median"])
    batch = best["metrics"]["batches"][str(size)]
    median = batch["stats"]["median"]
    if largest:
        return {
            "case": best["case"],
            "batch": size,
            "samples_per_s": batch.get("samples_per_s", size / median),
        }
    return {"case": best["case"], "batch": size, "p50_ms": median * 1000}


def parity_diff(run: Run) -> float | None:
    """The parity stage's largest absolute output difference, or None where it was not recorded."""
    outputs = run.case("parity", "outputs")
    value = outputs["metrics"].get("max_abs") if outputs else None
    return float(value) if isinstance(value, int | float) else None


def timed_cases(run: Run, stage: str) -> list[dict[str, Any]]:
    """The stage's cases that finished ok, without the records that summarize other records."""
    return [r for r in run.stage(stage) if r["status"] == "ok" and r["case"] not in _DERIVED_CASES]
