"""The debug stage: planted faults against each framework's own tools (one record per fault, tool and
mode) and the pdb/print probe (one record per mode). Opt-in: `bakeoff debug MODEL` or
`bakeoff run --stages ...,debug`; it is not in `bakeoff run`'s default stages.

Record shapes (rules.debugging reads the probe records):
- `<fault>/<tool>/<mode>`: settings {framework, mode, fault, tool, fault_step}; metrics {found, step,
  delay_steps, at_build, names_layer, names_op, points_at_line, message, overhead, ...};
- `probe/<mode>`: settings {framework, mode, default, steps}; metrics {checks: {probe: bool}, print_when,
  breakpoint_when, shown, ...}.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bakeoff.errors import UsageError
from bakeoff.measure.isolation import WorkerResult
from bakeoff.results.store import make_record
from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.stages.debug import debugging, probe, shared
from bakeoff.stages.debug.shared import DEBUG_MODES, DEFAULT_MODES, FAULTS, DebugOptions
from bakeoff.stages.train.shared import MODES


def options_for(
    modes: list[str], faults: list[str], probe_on: bool = True, probe_modes: list[str] | None = None
) -> dict[str, Any]:
    """The stage's entry in a run's options; the pdb probe covers `probe_modes` (default: `modes`)."""
    return {"modes": modes, "faults": faults, "probe": probe_on, "probe_modes": probe_modes or modes}


def options_of(options: dict[str, Any]) -> DebugOptions:
    mine = options.get("debug", {})
    return DebugOptions(
        modes=tuple(mine.get("modes", DEBUG_MODES)),
        probe_modes=tuple(mine.get("probe_modes", mine.get("modes", DEBUG_MODES))),
        faults=tuple(mine.get("faults", FAULTS)),
        probe=mine.get("probe", True),
        seed=options.get("seed", 0),
        threads=options.get("threads") or 1,
    )


def check(graph: Graph, options: dict[str, Any]) -> None:
    opts = options_of(options)
    for flag, given, allowed in (
        ("--modes", opts.modes, DEBUG_MODES),
        ("--modes", opts.probe_modes, DEBUG_MODES),
        ("--faults", opts.faults, FAULTS),
    ):
        unknown = [g for g in given if g not in allowed]
        if unknown or not given:
            raise UsageError(
                f"{flag}: {', '.join(unknown) or 'nothing given'} is not one of {', '.join(allowed)}"
            )


def run(ctx: RunContext) -> None:
    opts = options_of(ctx.options)
    started = time.perf_counter()
    shape_lines: dict[str, bool] = {}

    def on_case(framework: str, case: str, result: WorkerResult) -> None:
        fault, tool, mode = case.split("/")
        if fault == "shape" and tool == "none" and result.ok:
            shape_lines[mode] = bool(result.meta["points_at_line"])
        ctx.record(fault_record(framework, fault, tool, mode, result))
        found = "found" if result.ok and result.meta["found"] else "not found"
        ctx.progress(f"debug: {case} {found if result.ok else 'failed: ' + result.error[:80]}")

    done = frozenset(case for stage, case, _ in ctx.done if stage == "debug")
    for r in ctx.latest("debug"):  # a resumed run: the shape cases already recorded feed the probe records
        if r["status"] == "ok" and r["case"].startswith("shape/none/"):
            shape_lines[r["settings"]["mode"]] = bool(r["metrics"]["points_at_line"])
    debugging.run_faults(ctx.graph, opts, on_case, ctx.progress, done)
    probed = {f"probe/{mode}" for mode in opts.probe_modes}
    if opts.probe and not probed <= done:
        for record in probe_records(ctx.graph, opts, shape_lines, ctx.progress):
            ctx.record(record)
    ctx.progress(f"debug: done in {time.perf_counter() - started:.0f} s")


def fault_record(framework: str, fault: str, tool: str, mode: str, result: WorkerResult) -> dict[str, Any]:
    settings = {
        "framework": framework,
        "mode": mode,
        "fault": fault,
        "tool": tool,
        "fault_step": shared.fault_step(fault),
        "batch": shared.BATCH,
        "planted": shared.FAULTS[fault],
        "tool_is": shared.TOOLS[framework][tool],
    }
    case = shared.case_name(fault, tool, mode)
    if not result.ok:
        return make_record(
            "debug", case, "failed", framework=framework, message=result.error, settings=settings
        )
    return make_record(
        "debug",
        case,
        "ok",
        framework=framework,
        message=result.meta.get("message", ""),
        settings=settings,
        metrics=result.meta,
    )


def probe_records(
    graph: Graph, opts: DebugOptions, shape_lines: dict[str, bool], progress: Any
) -> list[dict[str, Any]]:
    records = []
    wanted = {
        framework: [m for m in opts.probe_modes if MODES[m][0] == framework]
        for framework in ("torch", "keras")
    }
    wanted = {framework: modes for framework, modes in wanted.items() if modes}
    with tempfile.TemporaryDirectory(prefix="bakeoff-probe-") as tmp:
        workdir = Path(tmp)
        files = debugging.prepare(graph, opts, workdir)
        every = [mode for modes in wanted.values() for mode in modes]
        progress(f"debug: a pdb session and print() inside forward/call, {', '.join(every)}")
        common = {"spec": graph.spec.model_dump(mode="json"), "threads": opts.threads, **files}
        started = time.perf_counter()
        found = probe.run_probes(
            {framework: {**common, "modes": modes} for framework, modes in wanted.items()},
            workdir,
            opts.timeout,
        )
        seconds = time.perf_counter() - started
    for framework, modes in wanted.items():
        probes, raw = found[framework]
        seen = {p.mode: p for p in probes}
        for mode in modes:
            if mode not in seen:
                message = f"the pdb session showed nothing for {mode}: {raw[-300:]}"
                records.append(
                    make_record("debug", f"probe/{mode}", "failed", framework=framework, message=message)
                )
                continue
            records.append(probe_record(framework, seen[mode], shape_lines.get(mode), seconds))
    return records


def probe_record(
    framework: str, found: probe.ModeProbe, shape_line: bool | None, seconds: float
) -> dict[str, Any]:
    checks = {
        "print_every_step": found.prints >= probe.STEPS,
        "breakpoint_every_step": found.stops >= probe.STEPS,
        "breakpoint_sees_values": found.sees_values,
    }
    if shape_line is not None:
        checks["traceback_names_user_line"] = shape_line
    return make_record(
        "debug",
        f"probe/{found.mode}",
        "ok",
        framework=framework,
        message=f"print {found.print_when}, breakpoint {found.breakpoint_when}",
        settings={
            "framework": framework,
            "mode": found.mode,
            "default": DEFAULT_MODES[framework] == found.mode,
            "steps": probe.STEPS,
            "commands_at_each_stop": list(probe.STOP_COMMANDS),
        },
        metrics={"checks": checks, **found.to_dict()},
        seconds=seconds,
    )
