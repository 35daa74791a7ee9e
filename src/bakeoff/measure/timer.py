"""Times a callable fairly: device work finished before each clock read, warm-up kept apart, repeats
stopped adaptively once the spread settles (after torch.utils.benchmark's adaptive_autorange and
perf_analyzer's stability windows).

Framework-neutral: callers pass `sync` (e.g. `torch.cuda.synchronize`, or a TF result's `.numpy()`),
so nothing here imports a framework.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bakeoff.measure.stats import Stats, summarize

Clock = Callable[[], float]
Sync = Callable[[Any], None]
StopReason = Literal["stable", "budget", "max_runs"]


@dataclass
class Measurement:
    """Raw per-call times (seconds) and their summary; warm-up calls are kept but not summarised."""

    times: list[float]
    warmup_times: list[float]
    stats: Stats
    stopped: StopReason
    total_seconds: float

    @property
    def first_call(self) -> float | None:
        """The very first call, which carries compilation and lazy initialisation when there is any."""
        return self.warmup_times[0] if self.warmup_times else None

    def to_dict(self, include_raw: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stats": self.stats.to_dict(),
            "stopped": self.stopped,
            "total_seconds": self.total_seconds,
            "first_call": self.first_call,
            "warmup_runs": len(self.warmup_times),
        }
        if include_raw:
            out["times"] = list(self.times)
            out["warmup_times"] = list(self.warmup_times)
        return out


def measure(
    fn: Callable[[], object],
    *,
    sync: Sync | None = None,
    warmup: int = 3,
    min_runs: int = 10,
    min_time: float = 0.2,
    max_time: float = 5.0,
    max_runs: int = 10_000,
    target_rel_iqr: float = 0.05,
    check_every: int = 5,
    clock: Clock = time.perf_counter,
) -> Measurement:
    """Warm up, then call `fn` until its times are stable, the budget is spent, or `max_runs` is hit.

    Stable means at least `min_runs` runs and `min_time` seconds of measuring, with IQR/median of all
    measured times at or under `target_rel_iqr`. `max_time` bounds the measuring phase only: a slow
    first call (compilation) is reported as `first_call`, never charged to the steady-state budget.
    """
    _check_counts(warmup=warmup, min_runs=min_runs, max_runs=max_runs, check_every=check_every)
    started = clock()
    warmup_times = [_span(*_timed_call(fn, sync, clock)) for _ in range(warmup)]
    times: list[float] = []
    began = clock()
    next_check = min_runs
    while True:
        t0, t1 = _timed_call(fn, sync, clock)
        times.append(t1 - t0)
        n, elapsed = len(times), t1 - began
        if n >= next_check:
            # Checks thin out as n grows, so computing percentiles stays a small share of the loop.
            next_check = n + max(check_every, n // 10)
            if elapsed >= min_time and _rel_iqr(times) <= target_rel_iqr:
                stopped: StopReason = "stable"
                break
        if elapsed >= max_time:
            stopped = "budget"
            break
        if n >= max_runs:
            stopped = "max_runs"
            break
    return Measurement(times, warmup_times, summarize(times), stopped, clock() - started)


def time_loop(
    step: Callable[[int], object], n: int, *, sync: Sync | None = None, clock: Clock = time.perf_counter
) -> list[float]:
    """Per-step durations of `step(0) .. step(n-1)`, e.g. training steps that each consume a batch.

    The loop body is kept bare (no checks, no logging) so it adds well under 2% to a 1 ms step.
    """
    times: list[float] = []
    append = times.append
    if sync is None:
        for i in range(n):
            t0 = clock()
            step(i)
            append(clock() - t0)
    else:
        for i in range(n):
            t0 = clock()
            out = step(i)
            sync(out)
            append(clock() - t0)
    return times


def _timed_call(fn: Callable[[], object], sync: Sync | None, clock: Clock) -> tuple[float, float]:
    t0 = clock()
    out = fn()
    if sync is not None:
        sync(out)
    return t0, clock()


def _span(t0: float, t1: float) -> float:
    return t1 - t0


def _rel_iqr(times: list[float]) -> float:
    p25, p50, p75 = np.percentile(times, [25, 50, 75])
    return float((p75 - p25) / p50) if p50 > 0 else 0.0


def _check_counts(**counts: int) -> None:
    minimum = {"warmup": 0, "min_runs": 1, "max_runs": 1, "check_every": 1}
    for name, value in counts.items():
        if value < minimum[name]:
            raise ValueError(f"{name} must be at least {minimum[name]}, got {value}")
