"""Options with one meaning across commands, help that shows what it says, and flags a resumed run
cannot take."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from tests.conftest import bakeoff
from tests.results.run_dirs import _records, _write_run


def test_help_shows_defaults_in_brackets_and_no_type_on_flags() -> None:
    help_text = " ".join(bakeoff("run", "--help").stdout.split())  # wrapped lines joined
    assert "[default: physical cores]" in help_text and "[default: what the run's machine has]" in help_text
    assert "<bool>" not in help_text and "alike ." not in help_text and "gpu ." not in help_text
    assert "x (x0, x1, ... for several inputs) and y" in " ".join(bakeoff("train", "--help").stdout.split())
    for option in ("--runtimes", "--batch-sizes", "--artifacts", "--margin"):
        assert option in help_text


def test_out_is_where_runs_go_in_every_command_and_export_writes_its_layout_to_to() -> None:
    for command in ("run", "train", "pipeline", "infer", "export", "convert"):
        assert "--out" in bakeoff(command, "--help").stdout, command
    export_help = bakeoff("export", "--help").stdout
    assert "--to" in export_help and "--runs" not in export_help


def test_resume_refuses_options_that_would_change_what_was_measured(tmp_path: Path) -> None:
    run = _write_run(tmp_path, "run-1", _records())
    before = (run / "records.jsonl").read_text()
    result = bakeoff("run", "--resume", str(run), "--epochs", "2", "--stages", "bogus")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--stages, --epochs cannot change it" in result.stderr
    assert (run / "records.jsonl").read_text() == before


def test_runs_and_compare_give_every_row_as_csv(tmp_path: Path) -> None:
    a = _write_run(tmp_path, "run-a", _records())
    b = Path(shutil.copytree(a, tmp_path / "run-b"))
    listed = list(csv.DictReader(io.StringIO(bakeoff("runs", "--out", str(tmp_path), "--csv").stdout)))
    assert {row["run_id"] for row in listed} == {"run-a", "run-b"} and "train.samples_per_s" in listed[0]
    compared = bakeoff("compare", str(a), str(b), "--csv")
    rows = list(csv.DictReader(io.StringIO(compared.stdout)))
    as_json = json.loads(bakeoff("compare", str(a), str(b), "--json").stdout)
    assert len(rows) == len(as_json["speed"]) and {"ratio.low", "ratio.high", "verdict"} <= set(rows[0])
