"""The Rich table of `bakeoff runs`: one row per run, newest first, with its headline numbers."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from bakeoff.report.fit import Cell, FittedTable
from bakeoff.report.numbers import sci
from bakeoff.results.runs import RunRow


def runs_table(rows: list[RunRow], title: str = "bakeoff runs") -> FittedTable:
    """One row per run, newest first, with its fastest training mode and inference cases: a table where
    the terminal is wide enough, one block per run where it is not (`--json` gives every field)."""
    columns = [
        "run",
        "model",
        "status",
        "started",
        "machine",
        "length",
        "fastest training",
        "fastest batch 1 (p50)",
        "fastest largest batch",
        "parity diff",
    ]
    cells: list[list[Cell]] = [
        [
            r.run_id,
            r.model,
            _status_cell(r),
            (r.started_at or "?").replace("T", " ")[:16],
            r.machine,
            {True: "quick", False: "full", None: "?"}[r.quick],
            f"{r.train['mode']} {r.train['samples_per_s']:,.0f}/s" if r.train else "-",
            _small(r.infer_small),
            _large(r.infer_large),
            sci(r.parity_max_abs) if r.parity_max_abs is not None else "-",
        ]
        for r in rows
    ]
    return FittedTable(title, columns, cells, lead=3, stacked=True)


def _status_cell(r: RunRow) -> Text:
    if r.status.startswith("unreadable") or r.failed:
        style = "red"
    elif r.finished:
        style = "green"
    else:
        style = "yellow"
    return Text(r.status, style=style)


def _small(info: dict[str, Any] | None) -> str:
    if not info:
        return "-"
    batch = "" if info["batch"] == 1 else f" (batch {info['batch']})"
    return f"{info['case']} {info['p50_ms']:.3g} ms{batch}"


def _large(info: dict[str, Any] | None) -> str:
    return f"{info['case']} {info['samples_per_s']:,.0f}/s (batch {info['batch']})" if info else "-"
