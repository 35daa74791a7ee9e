"""Why two runs may not be like for like: another model or spec, another length or other options,
another machine, other library versions, or a training matmul peak that moved. `bakeoff compare` shows
these as warnings above its tables.
"""

from __future__ import annotations

import json
from typing import Any

from bakeoff.measure.guard import noisy_stages
from bakeoff.results.run import Run
from bakeoff.results.runs import was_quick

# The matmul peak measured at the start of training moving by more than this marks a machine change.
# Not less: a quick run's peak has an IQR of 10-30% of itself, and two quick runs on one idle machine
# differ by some 10%.
PEAK_DRIFT = 0.20

# Settings that only pick which cases run: a difference shows up as cases found in one run only.
_SELECTION_OPTIONS = {"train.modes", "export.artifacts", "infer.runtimes"}


def comparability_warnings(a: Run, b: Run) -> list[str]:
    """What makes A and B not like for like: another model, other options, another machine or libraries."""
    warnings = []
    if a.model != b.model:
        warnings.append(f"different models: A is {a.model}, B is {b.model}")
    elif a.info.get("spec") != b.info.get("spec"):
        parts = _diff(a.info.get("spec") or {}, b.info.get("spec") or {})
        warnings.append(f"model {a.model} has a different spec in B: {_join(parts)}")
    qa, qb = was_quick(a.info), was_quick(b.info)
    if qa != qb:
        kind = {True: "quick", False: "full", None: "of unknown length"}
        warnings.append(
            f"A is a {kind[qa]} run, B a {kind[qb]} one: fewer epochs and shorter measurements in a quick "
            "run, so accuracies and timings differ for that reason alone"
        )
    options = [
        p
        for p in _diff(a.info.get("options") or {}, b.info.get("options") or {})
        if p.split(" ", 1)[0] not in _SELECTION_OPTIONS and not p.startswith("quick ")
    ]
    if options:
        warnings.append(f"options differ: {_join(options)}")
    machine = _machine_diff(a.info.get("environment") or {}, b.info.get("environment") or {})
    if machine:
        warnings.append(f"different machines: {_join(machine)}")
    libraries = _diff(
        (a.info.get("environment") or {}).get("libraries") or {},
        (b.info.get("environment") or {}).get("libraries") or {},
    )
    if libraries:
        warnings.append(f"library versions differ: {_join(libraries)}")
    warnings += _peak_warnings(a, b)
    for name, run in (("A", a), ("B", b)):
        for stage, why in noisy_stages(run.info.get("guard")).items():
            warnings.append(
                f"{name}'s {stage} stage ran on a busy machine ({why}): its changes are not judged"
            )
    return warnings


def not_like_for_like(a: Run, b: Run) -> str:
    """Why a difference between A and B may be the setup's rather than the code's (another model or
    spec, a quick run against a full one, other options), or "" when they are like for like. Machines
    and library versions are left out: finding what an upgrade or a new machine did is a comparison's
    job, and the warnings say so."""
    if a.model != b.model:
        return f"different models ({a.model} and {b.model})"
    if a.info.get("spec") != b.info.get("spec"):
        return f"model {a.model} has a different spec in B"
    if was_quick(a.info) != was_quick(b.info):
        return "a quick run against a full one"
    options = [
        p
        for p in _diff(a.info.get("options") or {}, b.info.get("options") or {})
        if p.split(" ", 1)[0] not in _SELECTION_OPTIONS and not p.startswith("quick ")
    ]
    return f"other options ({_join(options, 3)})" if options else ""


def _peak_warnings(a: Run, b: Run) -> list[str]:
    """The training stage measures each framework's matmul peak: where it moved, so did the machine
    (other tenants, clock, thermal state), and every timing ratio mixes code and machine."""
    peaks_b = {r["framework"]: r["metrics"].get("gflops") for r in b.stage("train") if r["case"] == "peak"}
    out = []
    for r in a.stage("train"):
        ga, gb = r["metrics"].get("gflops"), peaks_b.get(r["framework"])
        if (
            r["case"] != "peak"
            or not isinstance(ga, int | float)
            or not isinstance(gb, int | float)
            or ga <= 0
        ):
            continue
        if abs(gb / ga - 1.0) > PEAK_DRIFT:
            out.append(
                f"the machine ran at another speed: {r['framework']} fp32 matmul peak {ga:.1f} GFLOP/s in A, "
                f"{gb:.1f} in B ({gb / ga:.2f}x), so timing ratios mix code and machine"
            )
    return out


def _machine_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for key, name in (
        ("cpu", "CPU"),
        ("physical_cores", "physical cores"),
        ("logical_cores", "logical cores"),
        ("affinity_cores", "usable cores"),
        ("memory_gib", "memory GiB"),
        ("hostname", "host"),
        ("os", "OS"),
        ("python", "Python"),
    ):
        if a.get(key) != b.get(key):
            out.append(f"{name} {a.get(key)} vs {b.get(key)}")
    ga, gb = machine_gpus(a), machine_gpus(b)
    if ga != gb:
        out.append(f"GPUs {ga} vs {gb}")
    return out


def machine_gpus(env: dict[str, Any]) -> str:
    gpus = env.get("gpus") or []
    return ", ".join(f"{g.get('name', '?')} (driver {g.get('driver', '?')})" for g in gpus) or "none"


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Leaf paths where two JSON values differ: "train.epochs 3 vs 1"."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in [*a, *(k for k in b if k not in a)]:
            out += _diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    if a == b:
        return []
    return [f"{prefix.rstrip('.') or 'value'} {_short(a)} vs {_short(b)}"]


def _short(value: Any) -> str:
    text = "absent" if value is None else json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(parts: list[str], limit: int = 8) -> str:
    shown = "; ".join(parts[:limit])
    return shown + (f"; and {len(parts) - limit} more" if len(parts) > limit else "")
