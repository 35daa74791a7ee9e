"""Runs framework jobs in worker subprocesses, so torch and TensorFlow never share a process and a
crash, error or timeout in one job comes back as a result instead of taking the caller down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.npz import load_arrays


@dataclass
class WorkerResult:
    framework: str
    ok: bool
    seconds: float
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    kind: str = ""


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter is not ours to print
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_workers(requests: list[dict[str, Any]], workdir: Path, timeout: float = 600.0) -> list[WorkerResult]:
    """Start one worker per request, all at once, and wait for every one of them."""
    workdir.mkdir(parents=True, exist_ok=True)
    running = []
    for index, request in enumerate(requests):
        path = workdir / f"{index}-{request['framework']}-{request['job']}.json"
        path.write_text(json.dumps(request))
        log = path.with_suffix(".log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bakeoff.worker", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=worker_env(),
        )
        running.append((request["framework"], path, proc, log, time.perf_counter()))
    results = []
    for framework, path, proc, log, started in running:
        left = max(1.0, timeout - (time.perf_counter() - started))
        try:
            proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        results.append(_collect(framework, path, proc.returncode, time.perf_counter() - started, timeout))
    return results


def _collect(framework: str, path: Path, code: int, seconds: float, timeout: float) -> WorkerResult:
    result_path = path.with_suffix(".result.json")
    if not result_path.exists():
        if seconds >= timeout:
            why = f"timed out after {timeout:.0f} s"
        elif code < 0:
            why = f"died from signal {-code}"
        else:
            why = f"exited with status {code}"
        tail = _last_line(path.with_suffix(".log"))
        return WorkerResult(
            framework,
            False,
            seconds,
            error=f"{framework} worker {why}" + (f": {tail}" if tail else ""),
            kind="crash",
        )
    result = json.loads(result_path.read_text())
    if not result["ok"]:
        return WorkerResult(framework, False, seconds, error=result["error"], kind=result.get("kind", ""))
    arrays = load_arrays(path.with_suffix(".npz"))
    return WorkerResult(framework, True, seconds, arrays=arrays, meta=result["meta"])


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""
