"""How the commands print: Rich tables and lines to the terminal, or JSON (--json) for machines.

Rich is imported when a command first prints, not at `bakeoff --help`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def print_json(data: Any) -> None:
    from bakeoff.results.store import clean

    typer.echo(json.dumps(clean(data), indent=2, default=str))


def print_csv(rows: list[dict[str, Any]]) -> None:
    """One CSV row per item, nested fields flattened to dotted column names (ratio.low), every field kept."""
    import csv
    import sys

    flat = [_flatten(row) for row in rows]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            out.update(_flatten(item, f"{name}."))
        else:
            out[name] = json.dumps(item) if isinstance(item, list) else item
    return out


def progress(to: Any) -> Callable[[str], None]:
    """Prints each progress line of a stage to the console `to`, dimly bulleted."""
    from rich.text import Text

    return lambda line: to.print(Text.assemble(("• ", "dim"), line))  # Text: lines quote [shapes]


def quiet(line: str) -> None:
    """Progress that prints nothing (--json)."""
