"""The HTML building blocks report.html's sections share: the section frame and its "not measured" note,
tables and their cells, status badges, number formatting, and a chart paired with its table.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from bakeoff.report.digest import STAGE_TITLES

SECTIONS = {
    "verdict": "Verdict",
    "claims": "The article's claims, checked",
    "environment": "Environment and fairness settings",
    "parity": "Parity",
    "backends": "Keras on other backends",
    "training": "Training",
    "pipelines": "Input pipelines",
    "inference": "Inference",
    "debugging": "Debugging",
    "artifacts": "Artifacts",
    "serving": "Serving",
    "distributed": "Distributed training",
    "failures": "Failed cases",
}


def section(key: str, *parts: str) -> str:
    return f'<section id="{key}"><h2>{escape(SECTIONS[key])}</h2>{"".join(parts)}</section>'


def absent(digest: dict[str, Any], stage: str) -> str:
    if stage in digest["missing"]:
        why = "the run stopped before this stage left a record"
    elif stage not in digest["stages"]:
        why = f"not asked for in this run (--stages {','.join(digest['stages'])})"
    else:
        why = "no results recorded"
    return f'<p class="note">{escape(STAGE_TITLES[stage].capitalize())} not measured: {escape(why)}.</p>'


def table(headers: list[str], rows: Iterable[list[Any]], numeric: Iterable[int] = ()) -> str:
    right = set(numeric)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in right else ''}>{_cell(v)}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Raw(str):
    """Markup built here (a status badge), inserted without escaping."""


def _cell(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    return escape("-" if value is None else str(value))


def pair(svg: str | None, table: str, caption: str = "") -> str:
    chart = svg or '<p class="muted">no data to plot</p>'
    cap = f'<p class="muted">{escape(caption)}</p>' if caption else ""
    return f'<div class="pair"><div>{chart}</div><div>{table}{cap}</div></div>'


def status(status: str, text: str = "") -> Raw:
    cls = "ok" if status == "ok" else "bad"
    return Raw(f'<span class="{cls}">{escape(text or status)}</span>')


def num(value: float | None, fmt: str = ",.0f") -> str | None:
    return None if value is None else format(value, fmt)
