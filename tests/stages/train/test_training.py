"""The training bake-off through the real CLI and real workers: all five modes, a killed worker, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from bakeoff.stages.train.training import CONVERGENCE_LOSS_RTOL
from tests.conftest import BAKEOFF, bakeoff

pytestmark = pytest.mark.slow


def records_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def test_train_simplenet_one_epoch_all_modes(tmp_path: Path) -> None:
    result = bakeoff("train", "simplenet", "--epochs", "1", "--out", str(tmp_path), "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    by_case = {(r["case"], r["framework"]): r for r in data["records"]}
    modes = ["torch-eager", "torch-compile", "keras-eager", "keras-graph", "keras-xla"]
    for mode in modes:
        record = by_case[(mode, mode.split("-")[0])]
        assert record["status"] == "ok", record["message"]
        m = record["metrics"]
        assert m["samples_per_s"]["median"] > 0 and m["step_s"]["n"] == len(m["step_times"]) - 1
        assert 0.5 < m["val_acc"] <= 1.0  # one epoch of real MNIST digits
        assert m["first_step_s"] > 0 and m["gflops"] > 0 and 0 < m["utilization"] < 1.5
        assert m["resources"]["rss_peak_bytes"] > 50 * 2**20
        assert record["settings"]["optimizer"]["epsilon"] == 1e-7
    for framework in ("torch", "keras"):
        assert by_case[("peak", framework)]["metrics"]["gflops"] > 0
    summary = by_case[("summary", None)]["metrics"]
    conv = summary["convergence"]
    assert conv["ok"], conv["why"]
    assert conv["val_acc_gap_points"] <= 1.0
    assert set(summary["time_to_target_s"]) == set(modes)
    pairs = summary["mode_convergence"]
    assert set(pairs) == {"torch-compile", "keras-graph", "keras-xla"}
    assert all(c["ok"] and c["steps"] == c["run_steps"] for c in pairs.values()), pairs
    # Every mode timed again in 8 rounds of 2 blocks that took turns, on the model it trained.
    timing = summary["timing"]
    assert not timing["failed"] and set(timing["modes"]) == set(timing["kept"]) == set(modes), timing
    for mode, timed in timing["modes"].items():
        assert len(timed["round_sizes"]) == timing["rounds"] == 8, (mode, timed["round_sizes"])
        assert sum(timed["round_sizes"]) == len(timed["times"]), mode
        assert all(len(r) == 2 and min(r) >= 5 for r in timed["block_sizes"]), (mode, timed["block_sizes"])
    assert set(summary["vs_fastest"]) == set(modes) - {summary["fastest"]}


def test_eager_torch_and_eager_keras_agree_at_every_step_of_the_default_run(tmp_path: Path) -> None:
    """One Adam rule in both: simplenet's default run (3 epochs) from the same weights gives the same
    loss curve in eager torch and eager Keras at every step, within the convergence tolerance (measured
    on a 2-core CPU: 1.1e-5 to 2.0e-5 relative, under 1e-5 absolute; the stock torch Adam: 8e-3)."""
    args = ["train", "simplenet", "--modes", "torch-eager,keras-eager", "--out", str(tmp_path), "--json"]
    result = bakeoff(*args, timeout=600)
    assert result.returncode == 0, result.stderr
    by_case = {r["case"]: r for r in json.loads(result.stdout)["records"]}
    torch_m, keras_m = by_case["torch-eager"]["metrics"], by_case["keras-eager"]["metrics"]
    steps = 3 * (4000 // 64)  # 3 epochs of the 4,000 training digits, last partial batch dropped
    assert len(torch_m["step_losses"]) == len(keras_m["step_losses"]) == steps
    # The drift probe: a one-ulp nudge of the weights never moves simplenet's loss by 1e-5.
    assert len(torch_m["ulp_step_losses"]) == steps
    conv = by_case["summary"]["metrics"]["convergence"]
    assert conv["ok"], conv["why"]
    assert conv["steps"] == conv["run_steps"] == steps and conv["fp32_horizon"] is None
    assert conv["first_divergent_step"] is None
    a, b = np.array(torch_m["step_losses"]), np.array(keras_m["step_losses"])
    rel = np.abs(a - b) / np.abs(b)
    assert rel.max() == pytest.approx(conv["max_rel_loss_diff"])
    assert rel.max() < conv["loss_rtol"] == CONVERGENCE_LOSS_RTOL
    for record in (by_case["torch-eager"], by_case["keras-eager"]):
        optimizer = record["settings"]["optimizer"]
        assert optimizer["update_rule"] == "epsilon-hat (Keras' form) in both frameworks"
        assert "var -= alpha_t*m/(sqrt(v)+epsilon)" in optimizer["note"]
        assert (optimizer["epsilon"], optimizer["beta_1"], optimizer["beta_2"]) == (1e-7, 0.9, 0.999)


def test_bad_training_options_are_one_line_usage_errors(tmp_path: Path) -> None:
    cases = [
        (["--modes", "torch-eager,torch-jit"], "unknown mode(s) torch-jit"),
        (["--batch-size", "100000"], "--batch-size 100000 is larger than the 4000 training samples"),
        (["--compile-mode", "fast"], "--compile-mode: 'fast' is not one of"),
        (["--device", "cuda"], "--device cuda: this machine has no CUDA device"),
        (["--data", str(tmp_path / "none.npz")], "file does not exist"),
    ]
    for args, message in cases:
        result = bakeoff("train", "simplenet", "--out", str(tmp_path / "runs"), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # checked before any run directory is made


def test_data_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "d.npz", x=np.zeros((100, 28, 28), np.float32), y=np.zeros(100, np.int64))
    result = bakeoff("train", "lenet", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "samples of shape [28, 28], but input 'image' of lenet takes [28, 28, 1]" in result.stderr


def _wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_killed_worker_loses_nothing_finished_and_resume_completes(tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [
            str(BAKEOFF),
            "train",
            "simplenet",
            "--modes",
            "torch-eager,torch-compile,keras-graph",
            "--epochs",
            "1",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def eager_recorded() -> bool:
        runs = list(tmp_path.iterdir())
        return (
            bool(runs)
            and (runs[0] / "records.jsonl").exists()
            and any(r["case"] == "torch-eager" for r in records_of(runs[0]))
        )

    # Both matmul peaks, the torch worker's start and an epoch of eager torch come first: about half a
    # minute on a quiet 2-core machine, several times that beside the other test worker. These limits
    # only bound a hang.
    _wait_for(eager_recorded, 300)
    # torch.compile's first step takes seconds: kill its worker in the middle of it.
    workers = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "bakeoff.worker" in " ".join(p.cmdline())
    ]
    assert workers
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    (run_dir,) = tmp_path.iterdir()
    cases = {r["case"]: r for r in records_of(run_dir)}
    assert cases["torch-eager"]["status"] == "ok"
    assert cases["torch-compile"]["status"] == "failed"
    assert "died from signal 9" in cases["torch-compile"]["message"]
    assert cases["keras-graph"]["status"] == "ok"  # the other framework's cases still ran

    resumed = bakeoff("run", "--resume", str(run_dir), timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    records = records_of(run_dir)
    assert [r["status"] for r in records if r["case"] == "torch-eager"] == ["ok"]  # kept, not redone
    assert records[-2]["case"] == "torch-compile" and records[-2]["status"] == "ok"
    assert records[-1]["case"] == "summary"
    assert re.search(r"train: \d+ case\(s\) finished in an earlier attempt, kept", resumed.stdout)
    info = json.loads((run_dir / "run.json").read_text())
    assert len(info["resumed_at"]) == 1
    # Only a worker was killed: the first attempt finished (with a failed case) and its time counts too.
    assert info["seconds"] == sum(info["attempt_seconds"]) and len(info["attempt_seconds"]) == 2
    assert "in 2 attempts (resumed)" in (run_dir / "report.html").read_text()
