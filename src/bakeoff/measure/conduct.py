"""Conducted jobs: workers of several frameworks held ready at once, each doing one short command at a
time when the parent says so, never two at once.

Timing one worker's cases after another's puts seconds between the two sides of a comparison, and on a
shared machine its speed can change in that time (on the 2-core VM bakeoff is developed on, a fixed
loop runs at either ~9.5 or ~17.5 M items/s, switching within seconds). Conducted, the parent can
alternate short timing blocks of torch's, Keras's and ONNX Runtime's cases (A B A B ...), so a change
of speed falls on every side alike.

Commands go to the worker on its stdin (as job paths do), one JSON line each; replies come back on the
worker's reply pipe (`Worker.replies`). A command that raises is answered with its error and the job
goes on; a worker that dies or runs past the timeout is replaced by the pool, and the command fails.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from bakeoff.errors import BakeoffError
from bakeoff.measure.isolation import POLL_S, POOL, REPLY_FD_ENV, WorkerResult, _end, _Job, _submit

# Between the blocks of two cases (or modes) the parent waits this long: thread pools keep spinning a
# few milliseconds after their work (libgomp's spin count, ONNX Runtime's and Eigen's spinning
# workers), and on 2 cores that spin would compete with the next block.
SETTLE_S = 0.005
# How long a worker may take to import its framework and say it is ready.
START_TIMEOUT_S = 300.0


def take_turns(items: list[str], worker_of: Callable[[str], str], order: Sequence[str]) -> list[str]:
    """One item of each worker in turn, workers in `order` (torch, keras, native, torch, ...), so the
    items of different workers are timed a block apart instead of a worker's whole share apart."""
    groups = [[i for i in items if worker_of(i) == w] for w in order]
    return [i for tier in itertools.zip_longest(*groups) for i in tier if i is not None]


# ---------------------------------------------------------------- worker side


def serve_commands(handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Worker side: says it is ready, then runs each command with the handler its "op" names, until
    {"op": "end"} or the parent closes stdin."""
    fd = int(os.environ[REPLY_FD_ENV])
    _reply(fd, {"op": "ready"})
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        command = json.loads(line)
        if command["op"] == "end":
            return
        try:
            reply: dict[str, Any] = {"ok": True, "meta": handlers[command["op"]](command)}
        except BakeoffError as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        _reply(fd, reply)


def _reply(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


# ---------------------------------------------------------------- parent side


class Lost(Exception):
    """A worker left its conducted job (it died, ran past its time, or its job failed): `result` says
    how, as a failed WorkerResult."""

    def __init__(self, result: WorkerResult) -> None:
        super().__init__(result.error)
        self.result = result


class Conducted:
    """One worker's conducted job."""

    def __init__(self, request: dict[str, Any], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.job: _Job = _submit(request, path)
        self._buffer = b""
        self.ended = False

    @property
    def framework(self) -> str:
        return self.job.framework

    @property
    def pid(self) -> int:
        return self.job.worker.proc.pid

    def ready(self, timeout: float = START_TIMEOUT_S) -> None:
        if self._read(time.perf_counter() + timeout).get("op") != "ready":
            raise self._lost(False)

    def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The command's reply ({"ok": ..., "meta" or "error"}); raises Lost if the worker is gone."""
        try:
            stdin = self.job.worker.proc.stdin
            assert stdin is not None
            stdin.write((json.dumps(command) + "\n").encode())
            stdin.flush()
        except OSError:
            raise self._lost(False) from None
        return self._read(time.perf_counter() + timeout)

    def end(self, timeout: float = 60.0) -> None:
        """Ends the job and waits for the worker to be free for the next one."""
        if self.ended:
            return
        self.ended = True
        try:
            stdin = self.job.worker.proc.stdin
            assert stdin is not None
            stdin.write(b'{"op": "end"}\n')
            stdin.flush()
        except OSError:
            pass
        deadline = time.perf_counter() + timeout
        while not self.job.finished and self.job.worker.alive and time.perf_counter() < deadline:
            time.sleep(POLL_S)
        _end(self.job, not self.job.finished and self.job.worker.alive)

    def discard(self) -> None:
        """Kills the worker: nobody follows its job any more."""
        self.ended = True
        POOL.discard(self.job.worker)

    def _read(self, deadline: float) -> dict[str, Any]:
        fd = self.job.worker.replies
        while b"\n" not in self._buffer:
            # The job ended before replying (its result says why), or the worker died: a child it
            # forked could still hold the pipe's write end open, so the pipe alone may not say so.
            if self.job.finished or not self.job.worker.alive:
                raise self._lost(False)
            left = deadline - time.perf_counter()
            if left <= 0:
                raise self._lost(True)
            ready, _, _ = select.select([fd], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:  # only the worker holds the write end: it has died
                    self.job.worker.proc.wait()
                    raise self._lost(False)
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return dict(json.loads(line))

    def _lost(self, timed_out: bool) -> Lost:
        self.ended = True
        result = _end(self.job, timed_out)
        # Never back to the pool: a command it was sent may still wait on its stdin, where the serve
        # loop would read it as a job path.
        POOL.discard(self.job.worker)
        if result.ok:  # the job finished without the reply it owed
            result = WorkerResult(self.framework, False, result.seconds, error="the worker's job ended early")
        return Lost(result)


class Conductor:
    """Conducted jobs of several workers, one per framework, started together (their imports are not
    timed) and asked one at a time, with a pause for the last one's threads to settle when the worker
    changes. Leaving the with-block on an error kills the workers whose jobs were not ended."""

    def __init__(self, request: dict[str, Any], workdir: Path) -> None:
        self.request = request
        self.workdir = workdir
        self.jobs: dict[str, Conducted] = {}
        self._last: tuple[str, str] | None = None
        self._starts = 0

    def start(self, frameworks: list[str]) -> dict[str, WorkerResult]:
        """Starts a job in each framework's pooled worker; the frameworks that could not start, and why."""
        for framework in frameworks:
            self._starts += 1
            path = self.workdir / f"{framework}-{self._starts}.json"
            self.jobs[framework] = Conducted({**self.request, "framework": framework}, path)
        failed: dict[str, WorkerResult] = {}
        for framework in frameworks:
            try:
                self.jobs[framework].ready()
            except Lost as lost:
                del self.jobs[framework]
                failed[framework] = lost.result
        return failed

    def ask(self, framework: str, command: dict[str, Any], timeout: float, key: str = "") -> dict[str, Any]:
        """The reply to `command`; raises Lost (and forgets the job) when the worker is gone. `key`
        names what the command times (a case, a mode): when it changes, the last one's thread pools
        get SETTLE_S to stop spinning, also inside one worker (each ONNX Runtime session has its own)."""
        if self._last is not None and self._last != (framework, key):
            time.sleep(SETTLE_S)
        self._last = (framework, key)
        job = self.jobs[framework]
        try:
            return job.ask(command, timeout)
        except Lost:
            del self.jobs[framework]
            raise

    def __enter__(self) -> Conductor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for job in self.jobs.values():
            if exc_type is None:
                job.end()
            else:
                job.discard()
        self.jobs.clear()
