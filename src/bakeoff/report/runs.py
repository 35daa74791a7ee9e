"""The Rich table of `bakeoff runs`: one row per run, newest first, with its headline numbers."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from bakeoff.report.numbers import sci
from bakeoff.results.runs import RunRow


def runs_table(rows: list[RunRow], title: str = "bakeoff runs") -> Table:
    """One row per run, newest first, with its fastest training mode and inference cases."""
    table = Table(title=title, title_justify="left")
    columns = [
        "run",
        "model",
        "started",
        "machine",
        "length",
        "status",
        "fastest training",
        "fastest batch 1 (p50)",
        "fastest largest batch",
        "parity diff",
    ]
    for column in columns:
        table.add_column(column, no_wrap=column in ("run", "started"))
    for r in rows:
        table.add_row(
            r.run_id,
            r.model,
            (r.started_at or "?").replace("T", " ")[:16],
            r.machine,
            {True: "quick", False: "full", None: "?"}[r.quick],
            _status_cell(r),
            f"{r.train['mode']} {r.train['samples_per_s']:,.0f}/s" if r.train else "-",
            _small(r.infer_small),
            _large(r.infer_large),
            sci(r.parity_max_abs) if r.parity_max_abs is not None else "-",
        )
    return table


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
