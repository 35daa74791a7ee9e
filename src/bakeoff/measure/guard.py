"""The machine guard: was the machine quiet while a stage measured?

Two things can make a stage's numbers say more about the machine than about the code, and neither
shows inside one stage's own spread:

- other processes using the cores (another program, a second benchmark, a build): measured as the
  system's busy CPU time less what bakeoff and its workers used, per second of the stage, in cores;
- a hypervisor taking the cores away (steal time, on shared cloud machines).

A short fixed probe (a single-threaded loop in this process) before every stage and after the last
one shows how fast the machine ran around each stage. It is recorded, not judged: on the 2-core cloud
VM bakeoff is developed on, the same loop runs at ~9.5 or ~17.5 M items/s, switching within seconds
with nothing else running and no steal (a neighbour on the host's shared physical cores); drift like
that is what measuring in rounds and bootstrapping over them absorbs, and a veto on it would leave
every run undecided. A stage whose foreign load or steal crosses its limit is marked noisy: the
verdict does not decide the dimensions it measures, and the run says so with advice. psutil reads the
counters; nothing here imports a framework.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

# Other processes using more than this share of the machine's cores, on average over a stage, make it
# noisy: on 2 cores, a fifth of a core. An idle Linux machine's own daemons use about a hundredth.
FOREIGN_SHARE = 0.10
# Steal above this share of the stage's CPU time: the hypervisor gave the cores to someone else.
STEAL_SHARE = 0.05
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


def _own_cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


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


# How often a stage's descendants are read: a process killed with its group (a model server, a Ray
# daemon, torchrun's ranks) is never reaped by bakeoff, so its CPU time would otherwise count as another
# program's. Twice a second costs a few milliseconds of /proc reads.
FAMILY_INTERVAL_S = 0.5


class _Family:
    """This process's descendants' own CPU seconds, read every FAMILY_INTERVAL_S in a thread: the last
    reading of each process stays counted after it ends, whoever reaps it."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._start: dict[tuple[int, float], float] = {}
        self._last: dict[tuple[int, float], float] = {}
        self._stopped = threading.Event()
        self._read(self._start)
        self._thread = threading.Thread(target=self._loop, name="bakeoff-guard", daemon=True)
        self._thread.start()

    def _read(self, into: dict[tuple[int, float], float]) -> None:
        for p in self._me.children(recursive=True):
            try:
                t = p.cpu_times()
                into[(p.pid, p.create_time())] = t.user + t.system
            except psutil.Error:
                pass  # ended between the listing and the read

    def _loop(self) -> None:
        while not self._stopped.wait(FAMILY_INTERVAL_S):
            self._read(self._last)

    def stop(self) -> float:
        """CPU seconds the descendants used since the start (the ones alive then counted from there)."""
        self._stopped.set()
        self._thread.join()
        self._read(self._last)
        return sum(cpu - self._start.get(key, 0.0) for key, cpu in self._last.items())


class Watch:
    """Counts CPU time from `start` to `stop`; `stop` judges the span."""

    def __init__(self, probe_mops: float | None = None) -> None:
        self.probe_mops = probe_mops
        self.started = time.perf_counter()
        self.busy, self.steal = _system()
        self.tree = _tree_cpu()
        self.own = _own_cpu()
        self.family = _Family()

    def stop(self) -> Quiet:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        busy, steal = _system()
        cores = psutil.cpu_count() or 1
        # Each way undercounts bakeoff's own use: the tree misses descendants no one of ours reaped, the
        # readings miss the last second of each process and processes shorter than a reading.
        sampled = _own_cpu() - self.own + self.family.stop()
        ours = max(_tree_cpu() - self.tree, sampled)
        foreign = max(0.0, (busy - self.busy) - ours) / seconds
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


Guard = dict[str, dict[str, Any]]  # stage -> what the guard saw (Quiet.to_dict and probe_after_mops)


def with_probes_after(guard: Guard, final_probe: float | None) -> Guard:
    """Each stage's probe after it (the next stage's, or the final one) beside its probe before, so
    the report shows how fast the machine ran around every stage."""
    stages = list(guard)
    after = [guard[s].get("probe_mops") for s in stages[1:]] + [final_probe]
    pairs = zip(stages, after, strict=True)
    return {stage: {**guard[stage], "probe_after_mops": later} for stage, later in pairs}


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
            f"{q.get('steal_share', 0):.1%}, loop probe {q.get('probe_mops') or 0:.1f} M items/s before, "
            f"{q.get('probe_after_mops') or 0:.1f} after"
        )
        out[stage] = f"busy: {q.get('why')} ({seen})" if q.get("noisy") else f"quiet ({seen})"
    return out
