"""The machine guard: was the machine quiet while a stage measured?

Two things can make a stage's numbers say more about the machine than about the code, and neither
shows inside one stage's own spread:

- other processes using the cores (another program, a second benchmark, a build): measured as the
  system's busy CPU time less what bakeoff and its workers used, per second of the stage, in cores;
- a hypervisor taking the cores away (steal time, on shared cloud machines).

A short fixed probe (a single-threaded loop in this process) before every stage and after the last
one shows the machine's speed moving over the run (clock throttling, a slower share of a shared host).
A stage whose foreign load, steal or probe drift crosses its limit is marked noisy: the verdict does
not decide the dimensions it measures, and the run says so with advice. psutil reads the counters;
nothing here imports a framework.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

# Other processes using more than this share of the machine's cores, on average over a stage, make it
# noisy: on 2 cores, a fifth of a core. An idle Linux machine's own daemons use about a hundredth.
FOREIGN_SHARE = 0.10
# Steal above this share of the stage's CPU time: the hypervisor gave the cores to someone else.
STEAL_SHARE = 0.05
# A probe this much slower than the run's fastest probe: the machine itself slowed down.
PROBE_DRIFT = 0.20
# BAKEOFF_GUARD=off: still measured and recorded, never judged busy (a test suite that is not about
# the guard, or a user who accepts a shared machine's numbers knowingly).
GUARD_ENV = "BAKEOFF_GUARD"


def enabled() -> bool:
    return os.environ.get(GUARD_ENV, "on").lower() != "off"


_PROBE_ITEMS = 100_000
_PROBE_REPEATS = 7


def probe() -> float:
    """Millions of loop items per second of a fixed single-threaded loop, best of a few (~20 ms).
    Single-threaded on purpose: a multi-threaded probe (a BLAS matmul) on cores others are using
    measures oversubscription, not the machine's speed."""
    best = float("inf")
    for _ in range(_PROBE_REPEATS):
        t0 = time.perf_counter()
        sum(i * i for i in range(_PROBE_ITEMS))
        best = min(best, time.perf_counter() - t0)
    return _PROBE_ITEMS / best / 1e6


def _tree_cpu() -> float:
    """CPU seconds used by this process, its live descendants and the children it has reaped."""
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system + c.children_user + c.children_system
        except psutil.Error:
            pass  # ended between the listing and the read: its time reaches us when it is reaped
    return total


def _system() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    steal = getattr(t, "steal", 0.0)
    return sum(t) - idle - steal - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0), steal


@dataclass(frozen=True)
class Quiet:
    """What the guard saw during one stage."""

    seconds: float
    cores: int
    foreign_cores: float  # other processes' CPU use, in cores, on average
    steal_share: float  # steal time as a share of the machine's CPU time
    load_avg: float  # the 1-minute load average at the end (all processes, bakeoff's included)
    probe_mops: float | None  # the probe just before the stage, million loop items per second
    noisy: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Watch:
    """Counts CPU time from `start` to `stop`; `stop` judges the span."""

    def __init__(self, probe_mops: float | None = None) -> None:
        self.probe_mops = probe_mops
        self.started = time.perf_counter()
        self.busy, self.steal = _system()
        self.tree = _tree_cpu()

    def stop(self) -> Quiet:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        busy, steal = _system()
        cores = psutil.cpu_count() or 1
        foreign = max(0.0, (busy - self.busy) - (_tree_cpu() - self.tree)) / seconds
        steal_share = max(0.0, steal - self.steal) / (seconds * cores)
        why = []
        if foreign > FOREIGN_SHARE * cores:
            why.append(f"other processes used {foreign:.2f} of {cores} cores on average")
        if steal_share > STEAL_SHARE:
            why.append(f"the hypervisor took {steal_share:.0%} of the CPU time (steal)")
        return Quiet(
            seconds=seconds,
            cores=cores,
            foreign_cores=foreign,
            steal_share=steal_share,
            load_avg=os.getloadavg()[0],
            probe_mops=self.probe_mops,
            noisy=bool(why) and enabled(),
            why="; ".join(why) if enabled() else f"not judged ({GUARD_ENV}=off)",
        )


def judge_probes(guard: dict[str, dict[str, Any]], final_probe: float | None) -> dict[str, dict[str, Any]]:
    """Marks the stages measured while the probe ran more than PROBE_DRIFT under the run's best, judged
    on the probes before and after each stage (the next stage's, or the final one)."""
    stages = list(guard)
    probes = [guard[s].get("probe_mops") for s in stages] + [final_probe]
    known = [p for p in probes if p]
    if not known or not enabled():
        return guard
    best = max(known)
    out = {}
    for index, stage in enumerate(stages):
        entry = dict(guard[stage])
        around = [p for p in probes[index : index + 2] if p]
        slow = min(around) if around else best
        if slow < (1.0 - PROBE_DRIFT) * best:
            note = f"the machine ran {1 - slow / best:.0%} slower than at its best (loop probe)"
            entry["why"] = "; ".join(w for w in (entry.get("why"), note) if w)
            entry["noisy"] = True
        out[stage] = entry
    return out


def noisy_stages(guard: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """stage -> why, for the stages the guard marked noisy."""
    return {stage: str(q.get("why", "")) for stage, q in (guard or {}).items() if q.get("noisy")}


def advice(noisy: dict[str, str]) -> str:
    """One line for the end of a run: what was busy, and what to do."""
    stages = ", ".join(f"{stage} ({why})" for stage, why in noisy.items())
    return (
        f"the machine was busy during {stages}: the verdict does not decide what those stages measure. "
        "Rerun on a quiet machine: close other programs and benchmarks (top shows what runs), and on a "
        "cloud VM prefer a dedicated instance."
    )


def guard_lines(guard: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """stage -> one line of what the guard saw, for reports."""
    out = {}
    for stage, q in (guard or {}).items():
        seen = (
            f"other processes {q.get('foreign_cores', 0):.2f} of {q.get('cores')} cores, steal "
            f"{q.get('steal_share', 0):.1%}, probe {q.get('probe_mops') or 0:.1f} M items/s"
        )
        out[stage] = f"busy: {q.get('why')} ({seen})" if q.get("noisy") else f"quiet ({seen})"
    return out
