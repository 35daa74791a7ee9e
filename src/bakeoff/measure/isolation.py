"""Runs framework jobs in worker subprocesses, so torch and TensorFlow never share a process and a
crash, error or timeout in one job comes back as a result instead of taking the caller down.

Workers are long-lived, one per framework (`POOL`): importing TensorFlow costs ~5 s and torch ~2 s on
a 2-core machine, so every stage of a run reuses the same two processes. A worker that dies or runs
past its time is killed and replaced. A user's own model (bring your own pair) gets a fresh process
of its own, since importing the user's file could leave anything behind.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import psutil

from bakeoff.errors import BakeoffError
from bakeoff.measure.sampler import ResourceSampler
from bakeoff.measure.zygote import Forked, Zygote
from bakeoff.npz import load_arrays, save_arrays

# How often the parent looks for finished jobs and cases: each job's end is noticed this late at most.
POLL_S = 0.02
# The worker's end of its reply pipe, by file descriptor number.
REPLY_FD_ENV = "BAKEOFF_REPLY_FD"


@dataclass
class WorkerResult:
    framework: str
    ok: bool
    seconds: float
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    kind: str = ""


def worker_env(framework: str = "") -> dict[str, str]:
    """The environment of a worker: a Keras worker gets its backend here, since KERAS_BACKEND is read once,
    when keras is first imported."""
    from bakeoff.frameworks import KERAS_BACKENDS

    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter is not ours to print
    env.setdefault("PYTHONWARNINGS", "ignore")
    if framework in KERAS_BACKENDS:
        env["KERAS_BACKEND"] = KERAS_BACKENDS[framework]
    return env


class Worker:
    """One worker process (`python -m bakeoff.worker --serve`); a job is a request path on its stdin."""

    _ids = itertools.count()

    def __init__(self, framework: str, logdir: Path, zygote: Zygote | None = None) -> None:
        """Starts `python -m bakeoff.worker --serve`, or forks it from `zygote` (measure.zygote)."""
        self.framework = framework
        self.log_path = logdir / f"{framework}-{next(self._ids)}.log"
        self._log: IO[str] = self.log_path.open("w")
        # A pipe for the replies of a conducted job (measure.conduct): its commands come on stdin, as job
        # paths do. Only the worker holds the write end, so its death reads as the pipe's end here.
        self.replies, write_end = os.pipe()
        try:
            self.proc: subprocess.Popen[bytes] | Forked = (
                zygote.fork(self._log, write_end)
                if zygote
                else subprocess.Popen(
                    [sys.executable, "-m", "bakeoff.worker", "--serve"],
                    stdin=subprocess.PIPE,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    env={**worker_env(framework), REPLY_FD_ENV: str(write_end)},
                    pass_fds=(write_end,),
                )
            )
        except BaseException:
            os.close(self.replies)
            self._log.close()
            raise
        finally:
            os.close(write_end)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, request_path: Path) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{request_path}\n".encode())
        self.proc.stdin.flush()

    def release(self) -> None:
        """Tells the worker to leave once its current job is done (its stdin closes)."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]

    def stop(self, kill: bool = False, grace: float = 0.2) -> None:
        """Ends the worker: it holds nothing unsaved between jobs, and TensorFlow's orderly exit alone
        takes ~2 s, so it gets a moment (`grace` seconds) to leave on its own and is then killed."""
        if self.alive and not kill:
            self.release()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        if self.alive:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        if self.replies >= 0:  # once: a second close could hit a descriptor reused since
            os.close(self.replies)
            self.replies = -1


class Pool:
    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}
        self._zygotes: dict[str, Zygote] = {}
        self._logdir: Path | None = None

    def logdir(self) -> Path:
        if self._logdir is None:
            self._logdir = Path(tempfile.mkdtemp(prefix="bakeoff-workers-"))
        return self._logdir

    def worker(self, framework: str, fresh: bool = False) -> Worker:
        """The framework's live worker, or a new one; `fresh` always starts a new, unpooled one."""
        if fresh:
            return Worker(framework, self.logdir())
        current = self._workers.get(framework)
        if current is None or not current.alive:
            if current is not None:
                current.stop()
            current = self._workers[framework] = self._new(framework)
        return current

    def _new(self, framework: str) -> Worker:
        zygote = self._zygotes.get(framework)
        if zygote is not None:
            try:
                return Worker(framework, self.logdir(), zygote)
            except OSError:  # the zygote is gone: workers are started the slow way again
                self._zygotes.pop(framework).stop()
        return Worker(framework, self.logdir())

    def templates(self, modules: dict[str, list[str]], timeout: float = 300.0) -> list[str]:
        """Starts a zygote for each framework, all at once, importing its `modules`: the pooled workers
        started from now on are forked from it (measure.zygote). Returns the frameworks whose zygote
        could not start; their workers start the slow way."""
        if sys.platform != "linux":
            # Forking a process that imported a framework is tried on Linux only (macOS' system libraries
            # do not allow it once initialised, and Windows has no fork).
            return list(modules)
        new = {
            framework: Zygote(framework, names, self.logdir(), worker_env(framework))
            for framework, names in modules.items()
            if framework not in self._zygotes
        }
        deadline = time.perf_counter() + timeout
        failed = []
        for framework, zygote in new.items():
            if zygote.ready(max(0.0, deadline - time.perf_counter())):
                self._zygotes[framework] = zygote
            else:
                zygote.stop()
                failed.append(framework)
        return failed

    def drop_templates(self) -> None:
        for zygote in self._zygotes.values():
            zygote.stop()
        self._zygotes.clear()

    def discard(self, worker: Worker) -> None:
        worker.stop(kill=True)
        if self._workers.get(worker.framework) is worker:
            del self._workers[worker.framework]

    def close(self, keep_templates: bool = False) -> None:
        """Stops every pooled worker, and the zygotes unless `keep_templates`."""
        # All at once: each gets its moment to leave on its own side by side with the others.
        workers = list(self._workers.values())
        for worker in workers:
            worker.release()
        deadline = time.perf_counter() + 0.2
        for worker in workers:
            worker.stop(grace=max(0.0, deadline - time.perf_counter()))
        self._workers.clear()
        if keep_templates:
            return
        self.drop_templates()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None


POOL = Pool()
atexit.register(POOL.close)


@dataclass
class _Job:
    framework: str
    path: Path
    worker: Worker
    fresh: bool
    started: float = field(default_factory=time.perf_counter)

    @property
    def finished(self) -> bool:
        return self.path.with_suffix(".result.json").exists()


def _submit(request: dict[str, Any], path: Path, fresh: bool = False) -> _Job:
    path.write_text(json.dumps(request))
    worker = POOL.worker(request["framework"], fresh)
    worker.submit(path)
    return _Job(request["framework"], path, worker, fresh)


def _end(job: _Job, timed_out: bool) -> WorkerResult:
    seconds = time.perf_counter() - job.started
    if timed_out or not job.worker.alive:
        POOL.discard(job.worker)
    elif job.fresh:
        job.worker.stop()
    result_path = job.path.with_suffix(".result.json")
    if timed_out or not result_path.exists():
        return _failure(job, timed_out, seconds)
    result = json.loads(result_path.read_text())
    if not result["ok"]:
        return WorkerResult(job.framework, False, seconds, error=result["error"], kind=result.get("kind", ""))
    return WorkerResult(
        job.framework, True, seconds, arrays=load_arrays(job.path.with_suffix(".npz")), meta=result["meta"]
    )


def _failure(job: _Job, timed_out: bool, seconds: float) -> WorkerResult:
    code = job.worker.proc.returncode
    if timed_out:
        why = f"timed out after {seconds:.0f} s"
    elif code is not None and code < 0:
        why = f"died from signal {-code}"
    else:
        why = f"exited with status {code}"
    tail = _last_line(job.worker.log_path)
    return WorkerResult(
        job.framework,
        False,
        seconds,
        error=f"{job.framework} worker {why}" + (f": {tail}" if tail else ""),
        kind="crash",
    )


def _rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_workers(
    requests: list[dict[str, Any]], workdir: Path, timeout: float = 600.0, fresh: bool = False
) -> list[WorkerResult]:
    """Runs each request in its framework's worker, all at once, and waits for every one of them.

    Two requests of different frameworks run side by side: use this for work that is not timed."""
    workdir.mkdir(parents=True, exist_ok=True)
    jobs = [
        _submit(r, workdir / f"{i}-{r['framework']}-{r['job']}.json", fresh) for i, r in enumerate(requests)
    ]
    results: dict[int, WorkerResult] = {}
    while len(results) < len(jobs):
        for index, job in enumerate(jobs):
            if index in results:
                continue
            timed_out = time.perf_counter() - job.started > timeout
            if job.finished or timed_out or not job.worker.alive:
                results[index] = _end(job, timed_out)
        if len(results) < len(jobs):
            time.sleep(POLL_S)
    return [results[i] for i in range(len(jobs))]


# ---------------------------------------------------------------- cases published one by one


def _file(case: str) -> str:
    """A case's name as a file name: cases are named like 'dataloader/workers=2'."""
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", case)


def case_started(request: dict[str, Any], case: str) -> None:
    """Worker side: tell the parent a case begins, so it samples the worker's resources for that case
    from outside (a sampling thread inside would compete with the measured code for the GIL)."""
    Path(request["case_dir"], f"{_file(case)}.start").touch()


def case_loop(
    request: dict[str, Any], run_one: Callable[[str], tuple[dict[str, np.ndarray], dict[str, Any]]]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Worker side: runs each requested case and publishes it as it finishes; a case that raises is
    published as failed with its message, and the next case still runs."""
    for case in request["cases"]:
        case_started(request, case)
        try:
            arrays, meta = run_one(case)
        except BakeoffError as exc:
            emit_case(request, case, {}, {}, error=str(exc))
        except Exception as exc:
            emit_case(
                request, case, {}, {"traceback": traceback.format_exc()}, error=f"{type(exc).__name__}: {exc}"
            )
        else:
            emit_case(request, case, arrays, meta)
    return {}, {}


def emit_case(
    request: dict[str, Any], case: str, arrays: dict[str, np.ndarray], meta: dict[str, Any], error: str = ""
) -> None:
    """Worker side: publish one finished case at once, so it survives the worker dying later.

    The .json is renamed into place after the .npz is complete; the parent only looks for the .json.
    """
    base = Path(request["case_dir"]) / _file(case)
    save_arrays(f"{base}.npz", arrays)
    tmp = Path(f"{base}.json.tmp")
    tmp.write_text(json.dumps({"ok": not error, "error": error, "meta": meta}))
    os.replace(tmp, f"{base}.json")


def _read_case(framework: str, base: Path) -> WorkerResult:
    result = json.loads(Path(f"{base}.json").read_text())
    if not result["ok"]:
        return WorkerResult(framework, False, 0.0, meta=result["meta"], error=result["error"], kind="case")
    return WorkerResult(framework, True, 0.0, arrays=load_arrays(f"{base}.npz"), meta=result["meta"])


def run_cases(
    request: dict[str, Any],
    cases: list[str],
    workdir: Path,
    *,
    case_timeout: float,
    on_case: Callable[[str, WorkerResult], None],
) -> None:
    """Runs several timed cases of one framework in its worker, one after the other, reporting each as
    it finishes. A case that crashes the worker or runs past `case_timeout` is reported failed with the
    reason, and a fresh worker goes on with the cases after it."""
    remaining = list(cases)
    for attempt in range(len(cases)):
        if not remaining:
            return
        case_dir = workdir / f"{request['framework']}-{request['job']}-{attempt}"
        shutil.rmtree(
            case_dir, ignore_errors=True
        )  # results left by an earlier call would read as this one's
        case_dir.mkdir(parents=True)
        job = _submit({**request, "cases": remaining, "case_dir": str(case_dir)}, case_dir / "request.json")
        try:
            done, timed_out = _follow(job, remaining, case_dir, case_timeout, on_case)
        except BaseException:
            POOL.discard(job.worker)  # never leave a pooled worker busy with a job nobody follows
            raise
        left = [c for c in remaining if c not in done]
        if left:
            on_case(left[0], _end(job, timed_out))
        remaining = left[1:]


def run_grouped(
    request: dict[str, Any],
    cases: list[str],
    worker_of: Callable[[str], str],
    order: tuple[str, ...],
    workdir: Path,
    *,
    case_timeout: float,
    on_case: Callable[[str, WorkerResult], None],
    starting: Callable[[str, list[str]], None] = lambda _worker, _cases: None,
) -> None:
    """run_cases for each worker in `order` with the cases `worker_of` gives it: one worker after the
    other, never two at once, so timed cases never compete for the cores."""
    for worker in order:
        mine = [c for c in cases if worker_of(c) == worker]
        if mine:
            starting(worker, mine)
            run_cases(
                {**request, "framework": worker}, mine, workdir, case_timeout=case_timeout, on_case=on_case
            )


def _follow(
    job: _Job,
    cases: list[str],
    case_dir: Path,
    case_timeout: float,
    on_case: Callable[[str, WorkerResult], None],
) -> tuple[set[str], bool]:
    done: set[str] = set()
    sampling: dict[str, ResourceSampler] = {}
    baseline: dict[str, int] = {}
    last = time.perf_counter()
    try:
        while True:
            over = job.finished or not job.worker.alive
            for case in cases:
                if case in done:
                    continue
                if case not in sampling and (case_dir / f"{_file(case)}.start").exists():
                    sampling[case] = ResourceSampler(job.worker.proc.pid).__enter__()
                    baseline[case] = _rss(job.worker.proc.pid)
                if (case_dir / f"{_file(case)}.json").exists():
                    result = _read_case(job.framework, case_dir / _file(case))
                    if case in sampling:
                        sampler = sampling.pop(case)
                        sampler.__exit__(None, None, None)
                        # The worker is long-lived: its RSS at the start says what earlier cases left.
                        result.meta["resources"] = {
                            **sampler.usage.to_dict(),
                            "rss_start_bytes": baseline[case],
                        }
                    on_case(case, result)
                    done.add(case)
                    last = time.perf_counter()
            if over:
                return done, False
            if time.perf_counter() - last > case_timeout:
                return done, True
            time.sleep(POLL_S)
    finally:
        for sampler in sampling.values():
            sampler.__exit__(None, None, None)
