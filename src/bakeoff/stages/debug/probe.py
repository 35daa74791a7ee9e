"""The pdb/print probe: does a print() and a breakpoint() inside the model's forward/call run at every
step, once at trace time, or never, in each mode? A real pdb session is driven non-interactively: one
subprocess per framework (`python -m bakeoff.frameworks.<framework>.debug probe REQUEST.json`) with pdb
commands on its stdin, PYTHONBREAKPOINT unset (pdb.set_trace, Python's default), bounded in time, its
process group killed when it overruns. At each stop the commands are what a user types: `p x`, `c`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bakeoff.measure.isolation import worker_env

STEPS = 3
# At each stop: a marker (so stops can be counted), the tensor as the user would print it, continue.
STOP_COMMANDS = ('p "@@STOP"', "p x", "c")
MAX_STOPS = 60


@dataclass
class ModeProbe:
    mode: str
    prints: int  # print() calls seen while training STEPS steps
    stops: int  # breakpoint() stops while training STEPS steps
    build_prints: int  # ... while the model was built (Keras runs call symbolically then)
    build_stops: int
    shown: str  # what `p x` printed at the first stop while training (or building, when none)
    sees_values: bool  # that was a tensor with its values, not a symbolic placeholder

    @property
    def print_when(self) -> str:
        return when(self.prints)

    @property
    def breakpoint_when(self) -> str:
        return when(self.stops)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "print_when": self.print_when, "breakpoint_when": self.breakpoint_when}


def when(count: int, steps: int = STEPS) -> str:
    if count >= steps:
        return "every step"
    return f"at trace time ({count}x)" if count else "never"


def commands() -> str:
    return "\n".join(STOP_COMMANDS * MAX_STOPS) + "\n"


def run_probes(
    requests: dict[str, dict[str, Any]], workdir: Path, timeout: float
) -> dict[str, tuple[list[ModeProbe], str]]:
    """Runs each framework's probe script (framework -> request) under pdb's default hook, side by side
    (nothing here is timed); per framework, the probes per mode and the raw output (kept for the record
    when parsing finds less than it should)."""
    env = worker_env()
    env.pop("PYTHONBREAKPOINT", None)
    procs = {}
    for framework, request in requests.items():
        path = workdir / f"probe-{framework}.json"
        path.write_text(json.dumps({**request, "steps": STEPS}))
        procs[framework] = subprocess.Popen(
            [sys.executable, "-m", f"bakeoff.frameworks.{framework}.debug", "probe", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    out: dict[str, tuple[list[ModeProbe], str]] = {}
    for framework, proc in procs.items():
        try:
            text, err = proc.communicate(commands(), timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            text, err = proc.communicate()
            err += f"\nprobe timed out after {timeout:.0f} s"
        out[framework] = (parse(text), text + ("\n--- stderr ---\n" + err[-3000:] if proc.returncode else ""))
    return out


def parse(output: str) -> list[ModeProbe]:
    """Splits the probe's output at its '@@MODE' lines and counts prints and stops in each part."""
    parts: dict[str, str] = {}
    current = None
    for chunk in re.split(r"(@@MODE \S+|@@END \S+)", output):
        if chunk.startswith("@@MODE "):
            current = chunk.split(" ", 1)[1]
            parts[current] = ""
        elif chunk.startswith("@@END "):
            current = None
        elif current is not None:
            parts[current] += chunk
    probes = []
    for mode in [m for m in parts if "/" not in m]:
        train, build = parts[mode], parts.get(f"{mode}/build", "")
        shown = _shown(train) or _shown(build)
        probes.append(
            ModeProbe(
                mode,
                prints=train.count("@@PRINT"),
                stops=train.count("'@@STOP'"),
                build_prints=build.count("@@PRINT"),
                build_stops=build.count("'@@STOP'"),
                shown=shown[:300],
                sees_values=sees_values(_shown(train)),
            )
        )
    return probes


def _shown(text: str) -> str:
    found = re.search(r"'@@STOP'\s*\(Pdb\) (.*?)\(Pdb\) ", text, re.DOTALL)
    return found.group(1).strip() if found else ""


def sees_values(shown: str) -> bool:
    """A tensor printed with its numbers (torch's `tensor([...])`, TensorFlow's `numpy=`), not a symbolic
    one (a graph tensor, a KerasTensor, a FakeTensor or a Proxy)."""
    if not shown or any(s in shown for s in ("FakeTensor", "Proxy", "KerasTensor", "Functional")):
        return False
    return shown.startswith("tensor(") or "numpy=" in shown
