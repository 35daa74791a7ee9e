"""Ray Serve: the exported ONNX model behind one Ray Serve deployment with `@serve.batch` (ray_app runs
it), on a local Ray cluster started for it on 127.0.0.1, or on an existing cluster (`address`, e.g.
`ray://head:10001` or `auto`), the path past one machine.

Locally the whole cluster (GCS, raylet, Serve controller and proxy, the replica) lives in the launcher's
process group and goes with it; on someone else's cluster only bakeoff's application is deleted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bakeoff import ray_cluster
from bakeoff.errors import BakeoffError
from bakeoff.process_group import free_port, log_tail, start_group, stop_group
from bakeoff.stages.serve.servers import _http
from bakeoff.stages.serve.servers.base import HOST, Endpoint, RunningServer, ServeModel, wait_until
from bakeoff.stages.serve.servers.triton import layout_of, pick_artifact

READY_TIMEOUT_S = 180.0


@dataclass
class RayServer(RunningServer):
    """A running Ray Serve; stop() also removes Ray's temp dir (sockets, logs, the session's files)."""

    temp_dir: Path | None = None
    stop_file: Path | None = None

    def stop(self, grace: float = 10.0) -> None:
        """On someone else's cluster, asks the driver to delete its application (all that goes there) and
        waits for it; then ends the process group (locally: the whole cluster, which is bakeoff's own)."""
        if self.extra.get("address") and self.stop_file is not None and self.proc.poll() is None:
            self.stop_file.touch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        super().stop(grace)
        ray_cluster.remove_temp_dir(self.temp_dir)


def proxy_host(address: str | None) -> str:
    """Where Serve's HTTP proxy answers: here for a local cluster (or `auto`, one started on this machine),
    else the head node of the cluster at `address` (ray://HOST:10001 or HOST:6379)."""
    if not address or address in ("auto", "local"):
        return HOST
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return host or HOST


class RayServeLauncher:
    server = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.serve") is None:
            return "Ray Serve is not installed: `pip install 'ray[serve]==2.60.0'` (or bakeoff[servers])"
        return None

    def start(self, model: ServeModel) -> RunningServer:
        reason = self.unavailable()
        if reason:
            raise BakeoffError(reason)
        options = _http.options_of(model)
        address = ray_cluster.address_of(options.get("ray_address") or self.address)
        artifact, onnx_file = pick_artifact(model.artifacts)
        port = model.port or free_port()
        temp_dir = ray_cluster.new_temp_dir()
        stop_file = model.workdir / "ray_app.stop"
        config = {
            "name": model.name,
            "onnx_file": str(onnx_file),
            "threads": model.threads,
            "batching": model.batching,
            "max_batch_size": model.max_batch_size if model.batching else 1,
            "max_delay_ms": model.max_delay_ms if model.batching else 0.0,
            "port": port,
            "address": address,
            "temp_dir": str(temp_dir),
            "stop_file": str(stop_file),
            "noop": bool(options.get("noop")),
        }
        model.workdir.mkdir(parents=True, exist_ok=True)
        config_path = model.workdir / "ray_app.json"
        config_path.write_text(json.dumps(config, indent=1))
        stop_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "bakeoff.stages.serve.servers.ray_app", str(config_path)]
        env = {
            **_http.child_env(PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
            **ray_cluster.RAY_ENV,
        }
        log_path = model.workdir / "ray_serve.log"
        http = f"http://{proxy_host(address)}:{port}"
        ready = f"{http}/v2/models/{model.name}/ready"
        began = time.monotonic()
        proc, log = start_group(command, log_path, env=env, cwd=model.workdir)
        try:
            # /-/healthz answers before the application is deployed: poll the model's own route.
            wait_until(
                lambda: _http.request("GET", ready, timeout=2)[0] == 200,
                proc,
                log_path,
                "ray serve",
                READY_TIMEOUT_S,
            )
            _first_inference(http, model, onnx_file, log_path)
        except BaseException:
            stop_group(proc, 10.0)
            log.close()
            ray_cluster.remove_temp_dir(temp_dir)
            raise
        cold = time.monotonic() - began
        where = ray_cluster.where(address)
        return RayServer(
            server=self.server,
            implementation=(
                f"Ray Serve {_version()} on {where}, one replica running "
                + ("a no-op model (zeros)" if config["noop"] else f"ONNX Runtime on {artifact}")
                + (" under @serve.batch" if model.batching else "")
            ),
            endpoints=[
                Endpoint("kserve-v2-http", http, model.name),
                Endpoint("ray-http", http, model.name),
            ],
            proc=proc,
            log_path=log_path,
            cold_start_s=cold,
            extra={
                "http": http,
                "ready_url": ready,
                "address": address,
                "temp_dir": str(temp_dir),
                "artifact": artifact,
                "layout": layout_of(artifact),
                "batching": model.batching,
                "threads": model.threads,
                "max_batch_size": config["max_batch_size"],
                "max_delay_ms": config["max_delay_ms"] if model.batching else None,
            },
            _log=log,
            temp_dir=temp_dir,
            stop_file=stop_file,
        )


def _first_inference(http: str, model: ServeModel, onnx_file: Path, log_path: Path) -> None:
    from bakeoff.stages.export.deploy.tensors import onnx_specs

    inputs, _ = onnx_specs(onnx_file)
    body = _http.kserve_body(_http.sample_batch(inputs))
    url = f"{http}/v2/models/{model.name}/infer"
    status, answer = _http.request("POST", url, body, {"Content-Type": "application/json"}, timeout=60)
    if status != 200:
        raise BakeoffError(
            f"Ray Serve deployed {model.name} but its first inference failed ({status}: {answer[:300]!r}):\n"
            f"{log_tail(log_path)}"
        )


def _version() -> str:
    from importlib.metadata import version

    try:
        return version("ray")
    except Exception:
        return "(unknown version)"


launcher = RayServeLauncher()
