"""Template processes ("zygotes") that fresh workers are forked from.

Inference starts fresh workers every round, so that what differs between two processes (where the
allocator puts the weights and the runtime's arena, how a thread pool starts) shows up between rounds
instead of between runs. Started with `python -m bakeoff.worker`, a fresh set cost 12-13 s here:
importing TensorFlow alone is 12 s of CPU, torch with torch.compile's stack 10 s. A zygote pays the
imports once; a worker forked from it starts in milliseconds and still allocates, loads and starts its
thread pools on its own (LiteRT's batch-256 latency scatters as much between forked workers as between
started ones: 413-684 us against 400-600 us, with each worker stable within itself).

A zygote only imports: it never runs an op, so no framework thread pool exists when it forks (TensorFlow
and torch, XLA and torch.compile included, work in the forked child; a pool started before the fork would
not). It is the workers' parent, not bakeoff's: it reaps them and leaves each exit status in a file,
which `Forked` reads as Popen would read its child's. A worker's pipes are made here and passed over a
Unix socket, so it talks to bakeoff exactly as a started worker does.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

ZYGOTE_FD_ENV = "BAKEOFF_ZYGOTE_FD"
ZYGOTE_DIR_ENV = "BAKEOFF_ZYGOTE_DIR"
ZYGOTE_MODULES_ENV = "BAKEOFF_ZYGOTE_MODULES"
ZYGOTE_FRAMEWORK_ENV = "BAKEOFF_ZYGOTE_FRAMEWORK"
# A forked worker whose exit status nobody kept (its zygote was gone when it ended).
LOST_STATUS = 255
FORK_TIMEOUT_S = 30.0
# How long a reaped worker's exit status may take to appear in its file.
STATUS_WAIT_S = 1.0


def _status_path(folder: Path, pid: int) -> Path:
    return folder / f"exit-{pid}"


# ---------------------------------------------------------------- the zygote process


def serve_zygote(serve: Callable[[], int]) -> int:
    """The zygote's main loop: imports its modules, says "ready", then forks a worker running `serve`
    for each set of descriptors (stdin, log, reply pipe) it is sent, answering with the worker's pid,
    until bakeoff closes the socket."""
    sock = socket.socket(fileno=int(os.environ[ZYGOTE_FD_ENV]))
    folder = Path(os.environ[ZYGOTE_DIR_ENV])
    for module in filter(None, os.environ.get(ZYGOTE_MODULES_ENV, "").split(",")):
        importlib.import_module(module)

    def reap(_signum: int, _frame: object) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            tmp = folder / f"exit-{pid}.tmp"
            tmp.write_text(str(os.waitstatus_to_exitcode(status)))  # negative for a signal, as Popen's
            os.replace(tmp, _status_path(folder, pid))

    signal.signal(signal.SIGCHLD, reap)
    sock.sendall(b"ready\n")
    while True:
        message, fds, _, _ = socket.recv_fds(sock, 64, 3)
        if not message:
            return 0
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _become_worker(sock, fds, serve)
        for fd in fds:
            os.close(fd)
        sock.sendall(f"{pid}\n".encode())


def _become_worker(sock: socket.socket, fds: list[int], serve: Callable[[], int]) -> None:
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its own children (compile workers) are its own
        sock.close()
        stdin, log, reply = fds
        os.dup2(stdin, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(stdin)
        os.close(log)
        from bakeoff.measure.isolation import REPLY_FD_ENV

        os.environ[REPLY_FD_ENV] = str(reply)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own stdin
        code = serve()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # Not the zygote's exit path: its atexit hooks (TensorFlow's orderly exit) are not the worker's.
        os._exit(code)


# ---------------------------------------------------------------- bakeoff's side


class Forked:
    """A worker forked by a zygote: the part of Popen that Worker uses (pid, stdin, poll, wait, kill,
    returncode)."""

    def __init__(self, pid: int, stdin: IO[bytes], status: Path) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.returncode: int | None = None
        self._status = status

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._read()
            if self.returncode is None:
                try:
                    os.kill(self.pid, 0)  # alive, or dead and about to be reaped by its zygote
                except ProcessLookupError:
                    # Reaped: the zygote writes the status right after (or was gone, and then nobody will).
                    deadline = time.perf_counter() + STATUS_WAIT_S
                    while self.returncode is None and time.perf_counter() < deadline:
                        time.sleep(0.005)
                        self.returncode = self._read()
                    if self.returncode is None:
                        self.returncode = LOST_STATUS
        return self.returncode

    def _read(self) -> int | None:
        try:
            return int(self._status.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.perf_counter() + timeout
        while self.poll() is None:
            if deadline is not None and time.perf_counter() > deadline:
                raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout or 0.0)
            time.sleep(0.005)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:  # never signal a pid that may have been reused since
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class Zygote:
    """One framework's template process, started with `python -m bakeoff.worker --zygote`."""

    def __init__(self, framework: str, modules: list[str], folder: Path, env: dict[str, str]) -> None:
        self.framework = framework
        self.folder = folder / f"{framework}-zygote"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sock, theirs = socket.socketpair()
        self._log = (self.folder / "zygote.log").open("w")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bakeoff.worker", "--zygote"],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={
                    **env,
                    ZYGOTE_FD_ENV: str(theirs.fileno()),
                    ZYGOTE_DIR_ENV: str(self.folder),
                    ZYGOTE_MODULES_ENV: ",".join(modules),
                    ZYGOTE_FRAMEWORK_ENV: framework,
                },
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            self._sock.close()
            self._log.close()
            raise
        finally:
            theirs.close()

    def ready(self, timeout: float) -> bool:
        """Whether it imported its modules and waits for work (False: it failed or took too long)."""
        return self._line(time.perf_counter() + timeout) == "ready"

    def fork(self, log: IO[str], reply: int) -> Forked:
        """A new worker whose stdout and stderr go to `log` and whose replies go to `reply` (the pipe's
        write end, which stays the caller's to close). Raises OSError when the zygote cannot fork."""
        read_end, write_end = os.pipe()
        try:
            socket.send_fds(self._sock, [b"fork"], [read_end, log.fileno(), reply])
        finally:
            os.close(read_end)
        answer = self._line(time.perf_counter() + FORK_TIMEOUT_S)
        if not answer.isdigit():
            os.close(write_end)
            raise OSError(f"the {self.framework} zygote did not fork a worker")
        pid = int(answer)
        return Forked(pid, os.fdopen(write_end, "wb"), _status_path(self.folder, pid))

    def _line(self, deadline: float) -> str:
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.perf_counter()
            if left <= 0 or self.proc.poll() is not None:
                return ""
            ready, _, _ = select.select([self._sock], [], [], min(left, 0.1))
            if ready:
                chunk = self._sock.recv(64)
                if not chunk:
                    return ""
                data += chunk
        return data.decode().strip()

    def stop(self) -> None:
        """Closes its socket (it leaves when it reads the end) and kills it if it lingers. Workers it
        forked are not its to end: they belong to the pool."""
        self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=0.5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
