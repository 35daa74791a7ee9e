"""The run directory: records are appended whole, a torn last line loses only itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakeoff.errors import UsageError
from bakeoff.results.run import load_run
from bakeoff.results.store import RunStore, check_writable, make_record


def test_append_and_read_back(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "simple net/1")
    assert store.path.name.endswith("-simple-net-1")
    store.append(make_record("parity", "outputs", "ok", metrics={"max_abs": float("nan"), "n": 3}))
    store.append(make_record("parity", "layers", "failed", message="layer x"))
    records = store.records()
    assert [r["case"] for r in records] == ["outputs", "layers"]
    assert records[0]["metrics"] == {"max_abs": None, "n": 3}  # strict JSON: NaN becomes null
    json.loads(store.records_path.read_text().splitlines()[0])


def test_torn_last_line_keeps_the_rest(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "m")
    store.append(make_record("parity", "outputs", "ok"))
    with store.records_path.open("a") as f:
        f.write('{"stage": "par')
    assert [r["case"] for r in store.records()] == ["outputs"]


def test_two_runs_in_one_second_get_two_directories(tmp_path: Path) -> None:
    assert RunStore.create(tmp_path, "m").path != RunStore.create(tmp_path, "m").path


def test_status_is_checked() -> None:
    with pytest.raises(ValueError, match="status"):
        make_record("parity", "outputs", "maybe")


def test_damaged_lines_are_skipped_and_counted_binary_bytes_too(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "m")
    store.write_run({"model": "m", "stages": ["train"]})
    store.append(make_record("train", "a", "ok"))
    with store.records_path.open("ab") as f:
        f.write(b"\xff\xfe\x00 binary junk\n")
        f.write(b"not json at all\n")
        f.write(b'{"json": "but not a record"}\n')
        f.write(b"[1, 2, 3]\n")
    store.append(make_record("train", "b", "ok"))
    run = load_run(store.path)
    assert [r["case"] for r in run.records] == ["a", "b"]
    assert run.skipped == (2, 3, 4, 5)
    assert run.skipped_note.endswith("skipped 4 line(s) that hold no record (2, 3, 4, 5)")


def test_a_file_of_nothing_but_damage_is_one_line_error(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "m")
    store.write_run({"model": "m", "schema": 1})
    store.records_path.write_bytes(b"\x00\x01\x02\n\xff\n")
    with pytest.raises(UsageError, match=r"none of its 2 line\(s\) is a record: damaged"):
        load_run(store.path)


def test_an_unwritable_out_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    # Root writes into read-only folders, so the impossible location here is one under a file.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=r"^--out .*a-file/runs: cannot write there \(.+\)$"):
        RunStore.create(blocker / "runs", "m")
    with pytest.raises(UsageError, match="cannot write there"):
        check_writable(blocker / "deploy", "--out")
