"""The run directory: records are appended whole, a torn last line loses only itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakeoff.results.store import RunStore, make_record


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
