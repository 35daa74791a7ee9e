"""What a model server looks like to the serve stage: a launcher that starts one server process group on
127.0.0.1 for an exported model, and the running server's endpoints, which a load generator drives through
the codecs in `bakeoff.stages.serve.protocols`.

Every server runs in its own session (process group), so one `killpg` ends it and everything it forked
(TorchServe's java and its Python workers, tritonserver's backend stubs, Ray's raylets), also on error and
on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from bakeoff.errors import BakeoffError
from bakeoff.process_group import LOOPBACK, log_tail, stop_group

HOST = LOOPBACK


@dataclass(frozen=True)
class Endpoint:
    """One way to reach a served model. `protocol` names a codec in bakeoff.stages.serve.protocols
    ('kserve-v2-http', 'kserve-v2-grpc', 'tfserving-rest', 'tfserving-grpc', 'torchserve-rest',
    'ray-http'); `address` is 'http://127.0.0.1:PORT' for HTTP and '127.0.0.1:PORT' for gRPC."""

    protocol: str
    address: str
    model: str
    version: str | None = None
    # Headers every request must carry (TorchServe's token: ('Authorization', 'Bearer ...')); codecs add them.
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServeModel:
    """What a launcher serves: the exported artifacts of one model and how the server should batch."""

    name: str  # the model name clients use in URLs
    artifacts: Path  # the export stage's artifacts root (bakeoff.stages.export.stage.artifacts_root)
    inputs: Sequence[Any]  # TensorSpec of each input (bakeoff.stages.export.deploy.tensors), batch axis -1
    outputs: Sequence[Any]
    workdir: Path  # a scratch folder the launcher owns: model repository, logs, config files
    batching: bool = False  # server-side dynamic batching on or off
    max_batch_size: int = 64
    max_delay_ms: float = 2.0
    threads: int = 1  # intra-op threads of the model runtime inside the server
    port: int | None = None  # the main port; None picks a free one
    # Launcher-specific settings a launcher may read and others ignore: 'versions' (list of ints to serve),
    # 'labels' ({label: version}), 'noop' (serve a model that answers zeros: the stack's own ceiling),
    # 'tfserving_bin', 'grpc_port', 'max_queue', 'max_body', ...
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunningServer:
    """A started server. `implementation` says exactly what ran (e.g. "TF Serving API, bakeoff's
    implementation" or "tritonserver 2.51, python backend running ONNX Runtime"), so no record passes a
    stand-in off as the real thing."""

    server: str  # 'tf-serving', 'triton', 'torchserve', 'ray'
    implementation: str
    endpoints: list[Endpoint]
    proc: subprocess.Popen[bytes]
    log_path: Path
    cold_start_s: float = 0.0  # process start to the model's first successful answer
    extra: dict[str, Any] = field(default_factory=dict)  # metrics URL, management URL, token, ...
    _log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def endpoint(self, protocol: str) -> Endpoint:
        for e in self.endpoints:
            if e.protocol == protocol:
                return e
        raise BakeoffError(f"{self.server} has no {protocol} endpoint (it has {self.protocols()})")

    def protocols(self) -> list[str]:
        return [e.protocol for e in self.endpoints]

    def stop(self, grace: float = 5.0) -> None:
        stop_group(self.proc, grace)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Launcher(Protocol):
    server: str  # the name in records and on the command line

    def unavailable(self) -> str | None:
        """None when this machine can start the server; otherwise the one-line reason (what to install)."""

    def start(self, model: ServeModel) -> RunningServer:
        """Start the server on `model`, wait until the model itself answers, and return it. On any failure
        the process group is already stopped and a BakeoffError names the cause (with the log's tail)."""


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], log_path: Path, what: str, timeout: float
) -> float:
    """Poll `ready` until it is true; return the seconds waited. Raises (after stopping the group) when the
    process exits or `timeout` passes, quoting the log's tail, and stops the group on Ctrl-C too."""
    start = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                raise BakeoffError(f"{what} exited with code {proc.returncode}:\n{log_tail(log_path)}")
            with contextlib.suppress(Exception):
                if ready():
                    return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise BakeoffError(f"{what} not ready after {timeout:.0f} s:\n{log_tail(log_path)}")
            time.sleep(0.1)
    except BaseException:  # also Ctrl-C while waiting: the half-started server must not be left running
        stop_group(proc, 1.0)
        raise
