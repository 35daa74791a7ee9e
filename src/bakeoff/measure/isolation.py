"""Runs framework jobs in worker subprocesses, so torch and TensorFlow never share a process and a
crash, error or timeout in one job comes back as a result instead of taking the caller down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from bakeoff.measure.sampler import ResourceSampler
from bakeoff.npz import load_arrays, save_arrays


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


def _start(request_path: Path, log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bakeoff.worker", str(request_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=worker_env(),
    )


def run_workers(requests: list[dict[str, Any]], workdir: Path, timeout: float = 600.0) -> list[WorkerResult]:
    """Start one worker per request, all at once, and wait for every one of them."""
    workdir.mkdir(parents=True, exist_ok=True)
    running = []
    for index, request in enumerate(requests):
        path = workdir / f"{index}-{request['framework']}-{request['job']}.json"
        path.write_text(json.dumps(request))
        log = path.with_suffix(".log").open("w")
        proc = _start(path, log)
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
    if not result_path.exists() or not json.loads(result_path.read_text())["ok"]:
        return _failure(framework, path, code, seconds >= timeout, timeout, seconds)
    result = json.loads(result_path.read_text())
    return WorkerResult(
        framework, True, seconds, arrays=load_arrays(path.with_suffix(".npz")), meta=result["meta"]
    )


def _failure(
    framework: str, request_path: Path, code: int, timed_out: bool, timeout: float, seconds: float = 0.0
) -> WorkerResult:
    """Why a worker ended without a result: its own error when it could still write one (an import
    that failed, a user model that raised), else how it died and the last line it printed."""
    result_path = request_path.with_suffix(".result.json")
    if not timed_out and result_path.exists():
        result = json.loads(result_path.read_text())
        return WorkerResult(framework, False, seconds, error=result["error"], kind=result.get("kind", ""))
    if timed_out:
        why = f"timed out after {timeout:.0f} s"
    elif code < 0:
        why = f"died from signal {-code}"
    else:
        why = f"exited with status {code}"
    tail = _last_line(request_path.with_suffix(".log"))
    return WorkerResult(
        framework,
        False,
        seconds,
        error=f"{framework} worker {why}" + (f": {tail}" if tail else ""),
        kind="crash",
    )


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def case_started(request: dict[str, Any], case: str) -> None:
    """Worker side: tell the parent a case begins, so it samples the worker's resources for that case
    from outside (a sampling thread inside would compete with the measured code for the GIL)."""
    Path(request["case_dir"], f"{case}.start").touch()


def emit_case(
    request: dict[str, Any], case: str, arrays: dict[str, np.ndarray], meta: dict[str, Any], error: str = ""
) -> None:
    """Worker side: publish one finished case at once, so it survives the worker dying later.

    The .json is renamed into place after the .npz is complete; the parent only looks for the .json.
    """
    base = Path(request["case_dir"]) / case
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
    """Runs several cases of one framework in one worker (one start-up), reporting each as it finishes.

    A case that crashes the worker or runs past `case_timeout` is reported failed with the reason, and
    a fresh worker goes on with the cases after it.
    """
    remaining = list(cases)
    for attempt in range(len(cases)):
        if not remaining:
            return
        case_dir = workdir / f"{request['framework']}-{request['job']}-{attempt}"
        case_dir.mkdir(parents=True, exist_ok=True)
        path = case_dir / "request.json"
        path.write_text(json.dumps({**request, "cases": remaining, "case_dir": str(case_dir)}))
        with path.with_suffix(".log").open("w") as log:
            proc = _start(path, log)
            done, timed_out = _follow(proc, request["framework"], remaining, case_dir, case_timeout, on_case)
        left = [c for c in remaining if c not in done]
        if left:
            on_case(left[0], _failure(request["framework"], path, proc.returncode, timed_out, case_timeout))
        remaining = left[1:]


def _follow(
    proc: subprocess.Popen[bytes],
    framework: str,
    cases: list[str],
    case_dir: Path,
    case_timeout: float,
    on_case: Callable[[str, WorkerResult], None],
) -> tuple[set[str], bool]:
    done: set[str] = set()
    sampling: dict[str, ResourceSampler] = {}
    last = time.perf_counter()
    try:
        while True:
            exited = proc.poll() is not None
            for case in cases:
                if case in done:
                    continue
                if case not in sampling and (case_dir / f"{case}.start").exists():
                    sampling[case] = ResourceSampler(proc.pid).__enter__()
                if (case_dir / f"{case}.json").exists():
                    result = _read_case(framework, case_dir / case)
                    if case in sampling:
                        sampler = sampling.pop(case)
                        sampler.__exit__(None, None, None)
                        result.meta["resources"] = sampler.usage.to_dict()
                    on_case(case, result)
                    done.add(case)
                    last = time.perf_counter()
            if exited:
                return done, False
            if time.perf_counter() - last > case_timeout:
                proc.kill()
                proc.wait()
                return done, True
            time.sleep(0.05)
    finally:
        for sampler in sampling.values():
            sampler.__exit__(None, None, None)
