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


def progress(to: Any) -> Callable[[str], None]:
    """Prints each progress line of a stage to the console `to`, dimly bulleted."""
    from rich.text import Text

    return lambda line: to.print(Text.assemble(("• ", "dim"), line))  # Text: lines quote [shapes]


def quiet(line: str) -> None:
    """Progress that prints nothing (--json)."""
