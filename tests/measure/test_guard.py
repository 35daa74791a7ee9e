"""The machine guard: other processes' CPU use is seen, bakeoff's own is not, and a busy stage leaves the
verdict's dimensions it measures undecided."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from bakeoff.measure.guard import FOREIGN_SHARE, Watch, advice, noisy_stages, probe, with_probes_after


@pytest.fixture(autouse=True)
def guard_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKEOFF_GUARD", "on")


@contextmanager
def busy_elsewhere(seconds: float = 120.0) -> Iterator[None]:
    """Busy loops on about a third of the cores, started by a shell that exits at once, so they are
    reparented away from this process: to the guard they are another program. Killed by their group."""
    n = max(1, math.ceil(0.3 * (os.cpu_count() or 1)))
    loop = f"{sys.executable} -c 'import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass'"
    shell = subprocess.Popen(["sh", "-c", " ".join([f"{loop} &"] * n)], start_new_session=True)
    shell.wait(timeout=10)
    try:
        time.sleep(0.5)  # the interpreters start
        yield
    finally:
        os.killpg(shell.pid, signal.SIGKILL)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.serial  # its baseline is the machine's load: another test running beside it moves that
def test_own_work_is_not_foreign_but_another_programs_is() -> None:
    watch = Watch()
    time.sleep(1.0)
    before = watch.stop()  # what other tenants of this machine use anyway
    watch = Watch()
    # Work of this process and of a child, as a stage's and its worker's is.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 1\nwhile time.time() < end: pass"]
    )
    _spin(1.0)
    child.wait(timeout=30)
    own = watch.stop()
    watch = Watch()
    time.sleep(1.0)
    after = watch.stop()
    # Other tenants' use on both sides of our own work: on a shared machine it can rise between two
    # seconds, and a rise during our work is theirs, not ours counted as foreign (which would add ~2 cores).
    baseline = max(before.foreign_cores, after.foreign_cores)
    assert own.foreign_cores < baseline + 0.5, (before, own, after)
    with busy_elsewhere(30):
        watch = Watch()
        time.sleep(2.0)
        busy = watch.stop()
    assert busy.foreign_cores > FOREIGN_SHARE * busy.cores, busy
    assert busy.noisy and "other processes used" in busy.why


# A server started through a launcher: the launcher's child spins; the group is then killed, so no
# process of ours ever reaps the spinner (init does) and its CPU time never reaches our own counters.
_SPIN = "import time\nend = time.time() + 4\nwhile time.time() < end: pass"
_LAUNCHER = (
    f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {_SPIN!r}])\ntime.sleep(60)"
)


@pytest.mark.serial  # its baseline is the machine's load: another test running beside it moves that
def test_a_killed_groups_unreaped_descendants_count_as_ours(tmp_path: Path) -> None:
    from bakeoff.process_group import start_group, stop_group

    watch = Watch()
    time.sleep(1.0)
    before = watch.stop()
    watch = Watch()
    launcher, log = start_group([sys.executable, "-c", _LAUNCHER], tmp_path / "launcher.log")
    time.sleep(4.2)
    stop_group(launcher, grace=0.0)  # SIGKILL to the group: the spinner dies unreaped by us
    log.close()
    own = watch.stop()
    # Without the readings the spinner's ~4 CPU seconds in ~4.5 s would be ~0.9 cores of "other programs";
    # with them at most its last half second is lost.
    assert own.foreign_cores < before.foreign_cores + 0.3, (before, own)


def test_the_guard_can_be_told_not_to_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKEOFF_GUARD", "off")
    with busy_elsewhere(30):
        watch = Watch()
        time.sleep(1.0)
        seen = watch.stop()
    assert seen.foreign_cores > 0 and not seen.noisy and seen.why == "not judged (BAKEOFF_GUARD=off)"


def test_probes_are_recorded_around_each_stage_and_advice_names_the_busy_ones() -> None:
    assert probe() > 0
    guard = {
        "train": {"probe_mops": 10.0, "noisy": True, "why": "other processes used 1.00 of 2 cores"},
        "infer": {"probe_mops": 17.0, "noisy": False, "why": ""},
    }
    seen = with_probes_after(guard, 12.0)
    assert [seen[s]["probe_after_mops"] for s in ("train", "infer")] == [17.0, 12.0]
    assert not seen["infer"]["noisy"]  # a slower probe alone judges nothing: rounds absorb drift
    assert noisy_stages(seen) == {"train": "other processes used 1.00 of 2 cores"}
    assert "Rerun on a quiet machine" in advice(noisy_stages(seen))


@pytest.mark.slow
def test_a_busy_process_started_during_a_run_leaves_its_dimensions_undecided(tmp_path: Path) -> None:
    from bakeoff.report.verdict import Constraints, recommend
    from bakeoff.results.run import load_run
    from bakeoff.runner import run_stages
    from bakeoff.stages.export.stage import options_for as export_options
    from bakeoff.stages.infer.stage import options_for as infer_options

    options = {
        "seed": 0,
        "export": export_options(["torch-onnx", "keras-onnx"], 3, 64, 1e-3, None, 18, True),
        "infer": infer_options(["onnxruntime"], [1, 256], True),
        "quick": True,
    }
    with ExitStack() as stack:

        def on_stage(stage: str) -> None:
            if stage == "infer":  # the load starts during the run, after export
                stack.enter_context(busy_elsewhere())

        outcome = run_stages("simplenet", tmp_path, ["export", "infer"], options, lambda _m: None, on_stage)
    run = load_run(outcome.path)
    guard = run.info["guard"]
    assert guard["infer"]["noisy"], guard
    verdict = recommend(run, Constraints(deploy="browser"))  # ONNX Runtime: both sides ran
    inference = next(d for d in verdict.dimensions if d.name == "inference")
    assert inference.winner is None
    assert inference.finding.startswith("not decided: the machine was busy during the infer stage")
    assert any("Rerun on a quiet machine" in c for c in verdict.caveats)
