"""Workers forked from a template process (measure.zygote): they run jobs as started workers do, their
death reads the same, a zygote that cannot start leaves workers to start the slow way, and nothing
outlives the pool."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from bakeoff.measure.isolation import POOL, run_workers
from bakeoff.measure.zygote import Forked


@pytest.fixture(autouse=True)
def clean_pool() -> object:
    POOL.close()
    yield
    POOL.close()
    assert not psutil.Process().children(recursive=True)


def test_a_forked_worker_runs_jobs_and_dies_like_a_started_one(tmp_path: Path) -> None:
    assert POOL.templates({"native": ["bakeoff.stages.infer.inference"]}) == []
    worker = POOL.worker("native")
    assert isinstance(worker.proc, Forked)
    (zygote,) = psutil.Process().children()  # the worker is the zygote's child, not ours
    assert psutil.Process(worker.proc.pid).ppid() == zygote.pid
    (result,) = run_workers([{"framework": "native", "job": "no-such-job"}], tmp_path)
    assert not result.ok and result.error == "KeyError: 'no-such-job'"  # the job ran, in that worker
    assert POOL.worker("native") is worker
    os.kill(worker.proc.pid, signal.SIGKILL)
    assert worker.proc.wait(timeout=10) == -signal.SIGKILL  # kept by the zygote, read as Popen's
    assert not worker.alive
    fresh = POOL.worker("native")
    assert fresh is not worker and isinstance(fresh.proc, Forked) and fresh.alive


def test_a_zygote_that_cannot_import_leaves_workers_to_start_the_slow_way() -> None:
    assert POOL.templates({"native": ["bakeoff_no_such_module"]}) == ["native"]
    worker = POOL.worker("native")
    assert not isinstance(worker.proc, Forked) and worker.alive
