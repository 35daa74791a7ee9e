"""`bakeoff runs` and `bakeoff compare` at 80 columns: nothing cut with an ellipsis, no line too long,
every name whole; a wide terminal still gets the table."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from bakeoff.report.compare import compare_tables
from bakeoff.report.runs import runs_table
from bakeoff.results.compare import compare
from bakeoff.results.run import load_run
from bakeoff.results.runs import list_runs
from tests.results.run_dirs import _infer, _records, _write_run

LONG = "onnxruntime/keras-onnx-int8-dynamic"


def render(parts: Any, width: int) -> list[str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width)
    for part in parts if isinstance(parts, list) else [parts]:
        console.print(part)
    return buffer.getvalue().splitlines()


def runs(tmp_path: Path) -> tuple[Path, Path]:
    a = _write_run(tmp_path, "20261130-003809-simplenet", [*_records(), _infer(LONG, {1: 3e-5, 256: 4e-4})])
    slow = _infer(LONG, {1: 6e-5, 256: 9e-4}, seed=3)
    b = _write_run(tmp_path, "20261130-003916-simplenet", [*_records(), slow])
    return a, b


def test_runs_and_compare_fit_80_columns_without_cutting_anything(tmp_path: Path) -> None:
    a, b = runs(tmp_path)
    for lines in (
        render(runs_table(list_runs(tmp_path)), 80),
        render(compare_tables(compare(load_run(a), load_run(b))), 80),
    ):
        text = "\n".join(lines)
        assert "…" not in text
        assert max(len(line.rstrip()) for line in lines) <= 80
        assert "20261130-003809-simplenet" in text and LONG in text


def test_a_wide_terminal_keeps_the_table(tmp_path: Path) -> None:
    a, b = runs(tmp_path)
    wide = "\n".join(render(runs_table(list_runs(tmp_path)), 250))
    assert "┃ run" in wide and "fastest training" in wide
    compared = "\n".join(render(compare_tables(compare(load_run(a), load_run(b))), 250))
    assert f"│ {LONG}" in compared and "REGRESSION: B" in compared
