"""Samples a process's CPU, memory and (through NVML) GPU use on a background thread while a case runs.

Sampling the worker process from its parent keeps the sampler's own thread out of the measured
process; sampling this process works too, but then the sampler's few percent of CPU are counted in it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import psutil


@dataclass(frozen=True)
class ResourceUsage:
    """Means and peaks over a sampled span; GPU fields are None when GPU sampling was off."""

    cpu_percent_mean: float
    cpu_percent_peak: float
    rss_peak_bytes: int
    rss_mean_bytes: float
    samples: int
    gpu: bool
    gpu_util_mean: float | None
    gpu_util_peak: float | None
    gpu_mem_peak_bytes: int | None
    cores: int
    gpu_mem_scope: str = ""  # "process" when NVML reported the sampled processes' own memory, else "device"
    note: str = ""  # why GPU sampling was off, or why sampling ended early

    @property
    def cpu_util_share(self) -> float:
        """Share of the whole machine used: psutil's percent is per core, so 100 * cores is all of it."""
        return self.cpu_percent_mean / (100.0 * self.cores) if self.cores else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_util_share": self.cpu_util_share}


class _Gpu:
    """NVML, imported and initialised lazily; `error` says why it is off when it is."""

    def __init__(self) -> None:
        self.nvml: Any = None
        self.handles: list[Any] = []
        self.error = ""
        try:
            import pynvml  # from the nvidia-ml-py package
        except ImportError:
            self.error = "GPU sampling off: pynvml (nvidia-ml-py) is not installed"
            return
        try:
            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception as exc:  # NVMLError and friends: no driver, no device
            self.close()
            self.error = f"GPU sampling off: NVML could not start ({exc})"
            return
        if not self.handles:
            self.close()
            self.error = "GPU sampling off: NVML sees no device"

    @property
    def on(self) -> bool:
        return self.nvml is not None

    def sample(self, pids: set[int]) -> tuple[float, int, int | None]:
        """Busiest device's utilisation %, device-wide memory used, and the sampled processes' own."""
        nvml = self.nvml
        util = max(float(nvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in self.handles)
        used = sum(int(nvml.nvmlDeviceGetMemoryInfo(h).used) for h in self.handles)
        return util, used, self._process_memory(pids)

    def _process_memory(self, pids: set[int]) -> int | None:
        # NVML lists host pids; inside a container they do not match ours, so fall back to device-wide.
        # Some devices (MIG slices, older boards) refuse the per-process query: also device-wide then.
        try:
            listed = [p for h in self.handles for p in self.nvml.nvmlDeviceGetComputeRunningProcesses(h)]
        except self.nvml.NVMLError:
            return None
        own = [int(p.usedGpuMemory) for p in listed if p.pid in pids and p.usedGpuMemory is not None]
        return sum(own) if own else None

    def close(self) -> None:
        if self.nvml is not None:
            # Shutting down is best effort: the samples are already taken.
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()
            self.nvml = None


class _Series:
    """Running samples of one quantity; lists are fine at 20 samples a second."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)

    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else 0.0

    def peak(self) -> float:
        return max(self.values, default=0.0)


class ResourceSampler:
    """Context manager: samples `pid` (default: this process) every `interval` seconds until exit.

    >>> with ResourceSampler(worker.pid) as sampler:
    ...     worker.wait()
    >>> sampler.usage.rss_peak_bytes
    """

    def __init__(
        self,
        pid: int | None = None,
        interval: float = 0.05,
        include_children: bool = True,
        gpu: bool | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.include_children = include_children
        self.want_gpu = gpu is not False
        self._usage: ResourceUsage | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._cpu, self._rss = _Series(), _Series()
        self._gpu_util, self._gpu_mem_device, self._gpu_mem_own = _Series(), _Series(), _Series()
        self._gpu: _Gpu | None = None
        self._note = ""

    def __enter__(self) -> ResourceSampler:
        self._gpu = _Gpu() if self.want_gpu else None
        if self._gpu is not None and not self._gpu.on:
            self._note = self._gpu.error
        try:
            self._procs = {self.pid: psutil.Process(self.pid)}
            self._prime()
        except (psutil.NoSuchProcess, psutil.AccessDenied) as exc:
            self._gone(exc)
            return self
        self._thread = threading.Thread(target=self._run, name=f"resource-sampler-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._sample_if_none()
        if self._gpu is not None:
            self._gpu.close()
        self._usage = self._summary()

    @property
    def usage(self) -> ResourceUsage:
        """The summary, available once the with-block has exited."""
        if self._usage is None:
            raise RuntimeError("ResourceSampler.usage is only available after the with-block exits")
        return self._usage

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except (psutil.NoSuchProcess, psutil.AccessDenied) as exc:
                self._gone(exc)
                return

    def _sample_if_none(self) -> None:
        # A block shorter than one interval still gets one sample, over its whole span.
        if self._cpu.values:
            return
        try:
            self._sample()
        except (psutil.NoSuchProcess, psutil.AccessDenied) as exc:
            self._gone(exc)

    def _prime(self) -> None:
        # psutil's first cpu_percent() per Process returns 0.0; it only sets the baseline.
        self._procs[self.pid].cpu_percent(None)
        self._refresh_children()

    def _sample(self) -> None:
        self._refresh_children()
        main = self._procs[self.pid]
        with main.oneshot():
            # An exited process not yet reaped by its parent reads as zeros: that is the end, not data.
            if main.status() == psutil.STATUS_ZOMBIE:
                raise psutil.ZombieProcess(self.pid)
            cpu, rss = main.cpu_percent(None), main.memory_info().rss
        for pid, proc in list(self._procs.items()):
            if pid == self.pid:
                continue
            try:
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                del self._procs[pid]  # a child that ended takes only its own samples with it
        self._cpu.add(cpu)
        self._rss.add(rss)
        self._sample_gpu()

    def _refresh_children(self) -> None:
        if not self.include_children:
            return
        try:
            children = self._procs[self.pid].children(recursive=True)
        except psutil.AccessDenied:
            return
        for child in children:
            if child.pid not in self._procs:
                try:
                    child.cpu_percent(None)  # baseline: a new child's first interval is not counted
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self._procs[child.pid] = child

    def _sample_gpu(self) -> None:
        if self._gpu is None or not self._gpu.on:
            return
        try:
            util, used, own = self._gpu.sample(set(self._procs))
        except Exception as exc:  # an NVML error mid-run turns GPU sampling off, not the case
            self._note = f"GPU sampling stopped: {exc}"
            self._gpu.close()
            return
        self._gpu_util.add(util)
        self._gpu_mem_device.add(used)
        if own is not None:
            self._gpu_mem_own.add(own)

    def _gone(self, exc: Exception) -> None:
        reason = "exited" if isinstance(exc, psutil.NoSuchProcess) else "cannot be read"
        message = f"sampling stopped: process {self.pid} {reason}"
        self._note = f"{self._note}; {message}" if self._note else message

    def _summary(self) -> ResourceUsage:
        gpu = bool(self._gpu_util.values)
        # The processes' own memory where NVML reported it at least once: device-wide counts neighbours.
        own = bool(self._gpu_mem_own.values)
        gpu_mem = self._gpu_mem_own if own else self._gpu_mem_device
        return ResourceUsage(
            cpu_percent_mean=self._cpu.mean(),
            cpu_percent_peak=self._cpu.peak(),
            rss_peak_bytes=int(self._rss.peak()),
            rss_mean_bytes=self._rss.mean(),
            samples=len(self._cpu.values),
            gpu=gpu,
            gpu_util_mean=self._gpu_util.mean() if gpu else None,
            gpu_util_peak=self._gpu_util.peak() if gpu else None,
            gpu_mem_peak_bytes=int(gpu_mem.peak()) if gpu else None,
            cores=psutil.cpu_count() or 1,
            gpu_mem_scope=("process" if own else "device") if gpu else "",
            note=self._note,
        )
