"""Starts a distributed case's processes and brings them down: each launched process leads its own
process group (session), the whole group is killed on error, timeout or Ctrl-C, traffic stays on the
addresses given (127.0.0.1 on one machine) and ports are picked free.

torchrun starts its own rank processes under it (one group); MultiWorkerMirroredStrategy gets one
process per worker, each with the TF_CONFIG written here; MirroredStrategy one process for all. Ray
Train's launchers start one driver (`ray_train`), which joins the cluster at --ray-address or starts a
local one on 127.0.0.1 under it: its GCS, raylet and actors are in the driver's group and go with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff import ray_cluster
from bakeoff.measure.isolation import worker_env
from bakeoff.measure.sampler import ResourceSampler
from bakeoff.npz import load_arrays
from bakeoff.process_group import LOOPBACK, free_port, stop_group
from bakeoff.stages.distributed.shared import RAY_LAUNCHERS

# After every rank has written its result, processes get this long to leave before their group is
# killed (TensorFlow's collective executor can linger at exit).
EXIT_GRACE_S = 3.0
POLL_S = 0.05


@dataclass(frozen=True)
class Nodes:
    """Where the workers run: `hosts` as 'host:port' (the first is torchrun's rendezvous and node 0),
    and which of them this process launches (`rank`). One node on 127.0.0.1 by default."""

    hosts: tuple[str, ...] = ()
    rank: int = 0

    @property
    def count(self) -> int:
        return max(1, len(self.hosts))

    def address(self, k: int) -> tuple[str, int]:
        host, port = self.hosts[k].rsplit(":", 1)
        return host, int(port)

    @property
    def loopback(self) -> bool:
        return all(self.address(k)[0] in (LOOPBACK, "localhost") for k in range(len(self.hosts)))


@dataclass
class RankResult:
    ok: bool
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class GroupResult:
    ranks: dict[int, RankResult]
    launched_wall: float
    rss_peak_bytes: int  # the sum of each launched process tree's peak
    seconds: float
    error: str = ""  # why the group failed as a whole (timeout, a process died without a result)

    @property
    def ok(self) -> bool:
        return not self.error and all(r.ok for r in self.ranks.values())

    def why(self) -> str:
        errors = [f"rank {k}: {r.error}" for k, r in sorted(self.ranks.items()) if not r.ok]
        return "; ".join(([self.error] if self.error else []) + errors)


def torchrun_command(request_path: Path, workers: int, nodes: Nodes, run_id: str) -> list[str]:
    """torchrun with c10d rendezvous at node 0's address; --local-addr keeps it off other interfaces."""
    if nodes.hosts:
        endpoint = nodes.hosts[0]
        local = nodes.address(nodes.rank)[0]
    else:
        endpoint, local = f"{LOOPBACK}:{free_port()}", LOOPBACK
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nodes.count}",
        f"--nproc-per-node={workers}",
        f"--node-rank={nodes.rank}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={endpoint}",
        f"--rdzv-id={run_id}",
        f"--local-addr={local}",
        "--max-restarts=0",
        "--monitor-interval=0.1",
        "-m",
        "bakeoff.frameworks.torch.distributed",
        str(request_path),
    ]


def tf_config(workers: int, nodes: Nodes, index: int) -> dict[str, Any]:
    """TF_CONFIG for worker `index` (global) of `workers` per node: node k's worker i listens on
    node k's port + i; on one machine every worker gets a free loopback port."""
    if nodes.hosts:
        cluster = [
            f"{host}:{port + i}"
            for k in range(nodes.count)
            for host, port in [nodes.address(k)]
            for i in range(workers)
        ]
    else:
        cluster = [f"{LOOPBACK}:{free_port()}" for _ in range(workers)]
    return {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}


def commands(
    launcher: str, request_path: Path, workers: int, nodes: Nodes, run_id: str
) -> list[tuple[list[str], dict[str, str]]]:
    """The processes this node starts for a case, each with its extra environment."""
    if launcher in RAY_LAUNCHERS:
        driver = [sys.executable, "-m", "bakeoff.stages.distributed.ray_train", str(request_path)]
        # Ray's actors unpickle functions of bakeoff's: they import it from the driver's path.
        path = os.pathsep.join(p for p in sys.path if p)
        return [(driver, {**ray_cluster.RAY_ENV, "PYTHONPATH": path})]
    if launcher in ("torchrun", "accelerate", "lightning"):
        return [(torchrun_command(request_path, workers, nodes, run_id), {})]
    worker = [sys.executable, "-m", "bakeoff.frameworks.keras.distributed", str(request_path)]
    if launcher == "mirrored":
        return [([*worker, "0"], {})]
    first = tf_config(workers, nodes, 0)
    cluster = first["cluster"]
    out = []
    for i in range(workers):
        index = nodes.rank * workers + i
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        out.append(([*worker, str(index)], {"TF_CONFIG": json.dumps(config)}))
    return out


def expected_ranks(launcher: str, workers: int, nodes: Nodes) -> list[int]:
    if launcher == "mirrored":
        return [0]
    return [nodes.rank * workers + i for i in range(workers)]


def _env(extra: dict[str, str], threads: int, nodes: Nodes) -> dict[str, str]:
    # A local Ray cluster's actors inherit it too (through the raylet the driver starts).
    env = {**worker_env(), **extra, "OMP_NUM_THREADS": str(threads)}
    if not nodes.hosts or nodes.loopback:
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo would otherwise pick the machine's first interface
    return env


def _read_rank(out_dir: Path, rank: int) -> RankResult | None:
    path = out_dir / f"rank{rank}.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    if not result["ok"]:
        return RankResult(False, error=result["error"], meta={"traceback": result.get("traceback", "")})
    return RankResult(True, arrays=load_arrays(out_dir / f"rank{rank}.npz"), meta=result["meta"])


def _last_line(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def run_group(
    launcher: str,
    request: dict[str, Any],
    workdir: Path,
    *,
    workers: int,
    threads: int,
    nodes: Nodes,
    timeout: float,
) -> GroupResult:
    """Starts this node's processes for one case and waits for every rank's result (or the timeout);
    whatever happens, every process group it started is gone when it returns."""
    workdir.mkdir(parents=True, exist_ok=True)
    out_dir = workdir / "out"
    out_dir.mkdir(exist_ok=True)
    request_path = workdir / "request.json"
    # A local Ray cluster's sockets go under a short temp dir of their own, removed with the group.
    ray_temp = ray_cluster.new_temp_dir() if launcher in RAY_LAUNCHERS else None
    extra = {"ray_temp_dir": str(ray_temp)} if ray_temp else {}
    request_path.write_text(json.dumps({**request, **extra, "out_dir": str(out_dir)}))
    ranks = expected_ranks(launcher, workers, nodes)
    procs: list[subprocess.Popen[bytes]] = []
    samplers: list[ResourceSampler] = []
    logs = []
    launched = time.time()
    started = time.perf_counter()
    error = ""
    try:
        # Every node of a case must name the same rendezvous: the case's name, not a local path.
        run_id = str(request.get("case", workdir.name)).replace("/", "-").replace("=", "")
        for i, (argv, extra) in enumerate(commands(launcher, request_path, workers, nodes, run_id)):
            log = (workdir / f"process{i}.log").open("wb")
            logs.append(log)
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env(extra, threads, nodes),
                start_new_session=True,
            )
            procs.append(proc)
            samplers.append(ResourceSampler(proc.pid, gpu=False).__enter__())
        results: dict[int, RankResult] = {}
        while True:
            for rank in ranks:
                if rank not in results and (got := _read_rank(out_dir, rank)) is not None:
                    results[rank] = got
            if len(results) == len(ranks):
                break
            if any(r is not None and not r.ok for r in results.values()):
                break  # a failed rank leaves the others waiting on a collective: stop them now
            if all(p.poll() is not None for p in procs):
                error = "the processes exited before every rank wrote its result: " + _last_line(
                    workdir / "process0.log"
                )
                break
            if time.perf_counter() - started > timeout:
                error = f"timed out after {timeout:.0f} s"
                break
            time.sleep(POLL_S)
        # A local Ray cluster is ours and has nothing left to hand back: no grace (ray.shutdown takes it).
        own_ray = launcher in RAY_LAUNCHERS and not request.get("ray_address")
        deadline = time.perf_counter() + (0.0 if own_ray else EXIT_GRACE_S)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.perf_counter()))
    finally:
        for proc in procs:
            stop_group(proc, grace=0.0)
        ray_cluster.remove_temp_dir(ray_temp)
        for sampler in samplers:
            sampler.__exit__(None, None, None)
        for log in logs:
            log.close()
    rss = sum(s.usage.rss_peak_bytes for s in samplers)
    return GroupResult(results, launched, rss, time.perf_counter() - started, error)
