"""Captures the machine and library versions once per run, without importing any framework."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

LIBRARIES = (
    "bakeoff",
    "torch",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
    "tf2onnx",
)


def physical_cores() -> int:
    """The default thread count for every framework: hyperthreads share a core's arithmetic units."""
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    # A container or taskset may allow fewer CPUs than the machine has.
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return max(1, min(cores, allowed))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# fp32 FLOPs per cycle and core by the widest vector unit the CPU reports, assuming two FMA pipes (most
# server cores since Haswell and Zen 2). Some cores have one pipe, or split 512-bit work in two: an
# estimate, which is why the machine's ceiling is the best measured probe and this is shown beside it.
FLOPS_PER_CYCLE = (("avx512f", 64), ("fma", 32), ("avx", 16), ("sse2", 8))


def cpu_peak_estimate() -> dict[str, Any] | None:
    """Cores x clock x vector width: the CPU's theoretical fp32 peak, where /proc/cpuinfo tells them."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return None
    first_cpu = text.split("\n\n")[0].splitlines()
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first_cpu if ":" in line)}
    flags = set(fields.get("flags", "").split())
    mhz = fields.get("cpu MHz")
    per_cycle = next((n for flag, n in FLOPS_PER_CYCLE if flag in flags), None)
    if not mhz or not per_cycle:
        return None
    cores = physical_cores()
    gflops = cores * float(mhz) / 1000 * per_cycle
    basis = f"{cores} cores x {float(mhz) / 1000:.2f} GHz (as reported) x {per_cycle} fp32 FLOP/cycle"
    return {"gflops": round(gflops, 1), "basis": basis}


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def gpus() -> list[dict[str, str]]:
    """GPUs as nvidia-smi reports them; none when it is absent (torch is not imported to ask)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.split(", ") for line in out.strip().splitlines() if line.strip()]
    return [{"name": r[0], "driver": r[1], "memory": r[2]} for r in rows if len(r) == 3]


def capture() -> dict[str, Any]:
    memory = psutil.virtual_memory().total
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(memory / 2**30, 1),
        "gpus": gpus(),
        "cpu_peak_estimate": cpu_peak_estimate(),
        "libraries": library_versions(),
    }
