"""`bakeoff runs`: listing run directories, on synthetic and on a real quick run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bakeoff.errors import UsageError
from bakeoff.report.runs import runs_table
from bakeoff.results.run import load_run
from bakeoff.results.runs import list_runs, runs_json
from bakeoff.results.store import make_record
from tests.results.run_dirs import ENV, _copy, _parity, _records, _render, _train, _write_run

# --- listing --------------------------------------------------------------------------------------


def test_list_runs_shows_finished_partial_and_empty_runs_and_skips_other_folders(tmp_path: Path) -> None:
    # Names sort opposite to start times: the listing must order by started_at, newest first.
    _write_run(tmp_path, "a-finished", _records(), started="2026-11-25T05:00:00+0000", quick=True)
    partial = [_parity(), _train("torch-eager", 0.002)]
    _write_run(tmp_path, "b-partial", partial, started="2026-11-25T04:00:00+0000", finished=False)
    _write_run(tmp_path, "c-empty", [], started="2026-11-25T03:00:00+0000", finished=False)
    (tmp_path / "d-not-a-run").mkdir()
    (tmp_path / "d-not-a-run" / "notes.txt").write_text("hello")
    (tmp_path / "stray-file.txt").write_text("not a directory")
    damaged = tmp_path / "e-damaged"
    damaged.mkdir()
    (damaged / "run.json").write_text("{not json")
    mangled = _train("torch-eager", 0.002)
    del mangled["metrics"]["samples_per_s"]  # a hand-edited record
    _write_run(tmp_path, "f-mangled", [mangled], started="2026-11-25T02:00:00+0000")

    rows = list_runs(tmp_path)

    by_id = {r.run_id: r for r in rows}
    assert [r.run_id for r in rows] == ["a-finished", "b-partial", "c-empty", "f-mangled", "e-damaged"]
    assert by_id["a-finished"].status == "finished" and by_id["a-finished"].finished
    assert by_id["b-partial"].status == "stopped at train" and not by_id["b-partial"].finished
    assert by_id["c-empty"].status == "no records" and by_id["c-empty"].records == 0
    assert by_id["e-damaged"].status.startswith("unreadable") and by_id["e-damaged"].started_at is None
    assert by_id["f-mangled"].status.startswith("unreadable: a record lacks")
    assert by_id["a-finished"].machine == "AMD EPYC, 2 cores, no GPU, vm"
    assert by_id["a-finished"].quick is True
    # A partial run still gets the headline numbers it has.
    assert by_id["b-partial"].train is not None and by_id["b-partial"].infer_small is None


def test_headline_numbers_are_the_fastest_cases(tmp_path: Path) -> None:
    records = _records()
    _write_run(tmp_path, "run", records)
    (row,) = list_runs(tmp_path)

    train = {r["case"]: r["metrics"] for r in records if r["stage"] == "train"}
    assert row.train == {
        "mode": "torch-eager",
        "samples_per_s": train["torch-eager"]["samples_per_s"]["median"],
    }
    infer = {r["case"]: r["metrics"]["batches"] for r in records if r["stage"] == "infer"}
    assert row.infer_small is not None and row.infer_large is not None
    assert row.infer_small["case"] == "onnxruntime/torch-onnx" and row.infer_small["batch"] == 1
    p50 = float(np.median(infer["onnxruntime/torch-onnx"]["1"]["times"]))
    assert row.infer_small["p50_ms"] == pytest.approx(p50 * 1000)
    assert row.infer_large["case"] == "torch-eager/torch-twin" and row.infer_large["batch"] == 64
    assert row.infer_large["samples_per_s"] == pytest.approx(
        infer["torch-eager/torch-twin"]["64"]["samples_per_s"]
    )
    assert row.parity_max_abs == 1e-6


def test_failed_cases_and_gpus_show_in_the_row(tmp_path: Path) -> None:
    env = {
        **ENV,
        "gpus": [{"name": "NVIDIA H100", "driver": "550"}, {"name": "NVIDIA H100", "driver": "550"}],
    }
    records = [*_records(), make_record("infer", "tf-xla/keras-savedmodel", "failed", message="boom")]
    _write_run(tmp_path, "run", records, env=env, quick=False)
    (row,) = list_runs(tmp_path)
    assert row.status == "finished, 1 failed" and row.failed == 1
    assert row.machine == "AMD EPYC, 2 cores, 2x NVIDIA H100, vm"
    assert row.quick is False


def test_runs_table_and_json(tmp_path: Path) -> None:
    _write_run(tmp_path, "run-1", _records())
    _write_run(tmp_path, "run-2", [], finished=False)
    rows = list_runs(tmp_path)
    text = _render(runs_table(rows))
    assert "run-1" in text and "run-2" in text and "no records" in text and "torch-eager" in text
    decoded = json.loads(json.dumps(runs_json(rows), allow_nan=False))
    assert decoded[0]["run_id"] in ("run-1", "run-2") and {"status", "machine", "train"} <= set(decoded[0])


def test_missing_root_has_no_runs_and_a_file_is_refused(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "nothing-here") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        list_runs(tmp_path / "file")


# --- a real run ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_list_runs_of_a_real_quick_run(quick_run: Path, tmp_path: Path) -> None:
    _copy(quick_run, tmp_path, quick_run.name)
    (tmp_path / "scratch").mkdir()
    (row,) = list_runs(tmp_path)
    assert row.status == "finished" and row.quick is True and row.model == "simplenet"
    run = load_run(quick_run)
    steps = {
        r["case"]: np.median(r["metrics"]["step_times"][1:])
        for r in run.stage("train")
        if r["status"] == "ok" and "step_times" in r["metrics"]
    }
    assert row.train is not None and row.train["mode"] == min(steps, key=lambda m: steps[m])
    latency = {
        r["case"]: np.median(r["metrics"]["batches"]["1"]["times"])
        for r in run.stage("infer")
        if r["status"] == "ok"
        and "1" in r["metrics"].get("batches", {})
        and r["metrics"].get("gate") != "fail"
    }
    fastest = min(latency, key=lambda c: latency[c])
    assert row.infer_small == {"case": fastest, "batch": 1, "p50_ms": pytest.approx(latency[fastest] * 1000)}
    assert row.parity_max_abs is not None and row.parity_max_abs < 1e-4
    assert "simplenet" in _render(runs_table([row]))
