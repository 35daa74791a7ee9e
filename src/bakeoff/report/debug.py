"""The debug stage's results for every report: rows read from its records, then the terminal tables, the
report.html section and summary.md's lines. Reads records only, as every report does."""

from __future__ import annotations

from html import escape
from typing import Any

from rich.table import Table
from rich.text import Text

from bakeoff.stages.debug.shared import before_fault, overheads

FAULT_COLUMNS = ["fault", "tool", "mode", "found", "delay", "names", "source line", "overhead", "message"]
PROBE_COLUMNS = ["mode", "default", "print()", "breakpoint()", "while building", "`p x` at the stop shows"]


def digest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """{'faults': rows, 'probes': rows, 'finder': rows, 'failed': [...]}, or None without debug records."""
    mine = [r for r in records if r["stage"] == "debug"]
    if not mine:
        return None
    faults, probes, failed = [], [], []
    for r in mine:
        if r["status"] != "ok":
            failed.append({"case": r["case"], "message": r["message"]})
            continue
        s, m = r["settings"], r["metrics"]
        if r["case"].startswith("probe/"):
            probes.append(
                {
                    "mode": s["mode"],
                    "framework": s["framework"],
                    "default": s["default"],
                    "print": m["print_when"],
                    "breakpoint": m["breakpoint_when"],
                    "build": f"{m['build_prints']} print, {m['build_stops']} stop"
                    if m["build_prints"] or m["build_stops"]
                    else "-",
                    "shown": m["shown"],
                    "sees_values": m["sees_values"],
                    "checks": m["checks"],
                }
            )
        elif "fault" in s:
            failed_tool = before_fault(m, s["fault_step"])
            faults.append(
                {
                    "tool_failed": failed_tool,
                    "fault": s["fault"],
                    "tool": s["tool"],
                    "mode": s["mode"],
                    "framework": s["framework"],
                    **{k: m.get(k) for k in FAULT_METRICS},
                }
            )
            if failed_tool:
                faults[-1]["found"] = False
    overhead = overheads([(f["tool"], f["mode"], f.pop("clean_times") or []) for f in faults])
    for f in faults:
        f["overhead"] = overhead.get((f["tool"], f["mode"]))
    finder = [
        {
            "fault": f["fault"],
            "framework": f["framework"],
            "layer": f.get("finder_layer"),
            "kind": f.get("finder_kind"),
            "step": f["step"],
            "delay": f["delay_steps"],
        }
        for f in faults
        if f["tool"] == "bakeoff"
    ]
    return {"faults": faults, "probes": probes, "finder": finder, "failed": failed}


FAULT_METRICS = (
    "found",
    "step",
    "delay_steps",
    "at_build",
    "names_layer",
    "names_op",
    "points_at_line",
    "clean_times",
    "message",
    "loss_nonfinite_step",
    "source",
    "finder_layer",
    "finder_kind",
)


def fault_cells(f: dict[str, Any]) -> list[str]:
    """One fault row as text: found, delay, names, source line, overhead, message."""
    if f.get("tool_failed"):
        delay = f"tool failed at step {f['step']}, before the fault"
    elif not f["found"]:
        delay = "-"
        if f.get("loss_nonfinite_step") is not None:
            delay = f"(loss non-finite at step {f['loss_nonfinite_step']}, nothing raised)"
    elif f["at_build"]:
        delay = "at model build"
    else:
        delay = f"+{f['delay_steps']} steps" if f["delay_steps"] is not None else "?"
    names = ", ".join(n for n, k in (("layer", "names_layer"), ("op", "names_op")) if f[k]) or "-"
    if not f["found"]:
        names = "-"
    overhead = "-" if f["tool"] == "none" or f["overhead"] is None else f"{f['overhead']:.2f}x"
    return [
        "no (tool error)" if f.get("tool_failed") else "yes" if f["found"] else "no",
        delay,
        names,
        "yes" if f["points_at_line"] and f["found"] else "no",
        overhead,
        (f["message"] or "")[:90],
    ]


def probe_cells(p: dict[str, Any]) -> list[str]:
    shown = " ".join(p["shown"].split())[:60] or "-"
    return [
        p["mode"],
        "yes" if p["default"] else "",
        p["print"],
        p["breakpoint"],
        p["build"],
        f"{'values' if p['sees_values'] else 'no values'}: {shown}",
    ]


def finder_line(d: dict[str, Any]) -> str:
    parts = []
    for fault in dict.fromkeys(r["fault"] for r in d["finder"]):
        found = [
            f"{r['framework']}: {r['kind']} of {r['layer']} at step {r['step']} (+{r['delay']})"
            if r["layer"]
            else f"{r['framework']}: nothing non-finite"
            for r in d["finder"]
            if r["fault"] == fault
        ]
        parts.append(f"{fault}: {'; '.join(found)}")
    return "; ".join(parts)


# ---------------------------------------------------------------- terminal


def tables(records: list[dict[str, Any]]) -> list[Table | Text]:
    d = digest(records)
    if d is None:
        return []
    parts: list[Table | Text] = []
    if d["faults"]:
        table = Table(
            title="debug: planted faults (fault x tool x mode; delay counted from the fault's first step)",
            title_justify="left",
        )
        for column in FAULT_COLUMNS:
            table.add_column(column)
        for f in d["faults"]:
            table.add_row(f["fault"], f["tool"], f["mode"], *(Text(c) for c in fault_cells(f)))
        parts.append(table)
    if d["finder"]:
        parts.append(Text(f"bakeoff's first-non-finite-layer finder: {finder_line(d)}"))
    if d["probes"]:
        table = Table(
            title="debug: print() and breakpoint() inside forward/call, real pdb session, 3 training steps",
            title_justify="left",
        )
        for column in PROBE_COLUMNS:
            table.add_column(column)
        for p in d["probes"]:
            table.add_row(*(Text(c) for c in probe_cells(p)))
        parts.append(table)
    for f in d["failed"]:
        parts.append(Text(f"debug {f['case']} failed: {f['message'][:200]}", style="red"))
    return parts


# ---------------------------------------------------------------- report.html and summary.md


def html_section(d: dict[str, Any] | None, absent: str) -> str:
    from bakeoff.report import markup  # markup reads digest, which reads this module

    if d is None:
        return markup.section("debugging", absent)
    parts = [
        "<p>Faults planted in a copy of each twin, after its first layer; each framework's own tools "
        "run on it in each mode. Delay counts steps from the fault's first step; overhead is the "
        "tool's median step time with no fault acting over the same without a tool.</p>",
        markup.table(
            FAULT_COLUMNS, [[f["fault"], f["tool"], f["mode"], *fault_cells(f)] for f in d["faults"]]
        ),
    ]
    if d["finder"]:
        parts.append(f"<p>bakeoff's first-non-finite-layer finder: {escape(finder_line(d))}</p>")
    if d["probes"]:
        parts.append(
            "<p>print() and breakpoint() inside the model's forward/call, in a real pdb session driven "
            "through its stdin (<code>p x</code>, <code>c</code> at each stop):</p>"
        )
        parts.append(markup.table(PROBE_COLUMNS, [probe_cells(p) for p in d["probes"]]))
    return markup.section("debugging", *parts)


def markdown_lines(d: dict[str, Any] | None) -> list[str]:
    if d is None:
        return []
    lines = ["", "| " + " | ".join(FAULT_COLUMNS) + " |", "|" + "---|" * len(FAULT_COLUMNS)]
    lines += [
        "| " + " | ".join(_md(c) for c in [f["fault"], f["tool"], f["mode"], *fault_cells(f)]) + " |"
        for f in d["faults"]
    ]
    if d["finder"]:
        lines += ["", f"bakeoff's first-non-finite-layer finder: {_md(finder_line(d))}."]
    if d["probes"]:
        lines += ["", "| " + " | ".join(PROBE_COLUMNS) + " |", "|" + "---|" * len(PROBE_COLUMNS)]
        lines += ["| " + " | ".join(_md(c) for c in probe_cells(p)) + " |" for p in d["probes"]]
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
