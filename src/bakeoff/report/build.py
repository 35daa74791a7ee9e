"""Writes a run's report.html, summary.md and results.json from its records alone (no re-measuring),
for a finished run or one that stopped halfway."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakeoff import __version__
from bakeoff.report import html, markdown
from bakeoff.report.digest import digest as make_digest
from bakeoff.report.verdict import Constraints, Verdict, recommend
from bakeoff.results.run import Run
from bakeoff.results.store import SCHEMA_VERSION, check_writable, clean


@dataclass
class Report:
    files: list[Path]
    verdict: Verdict
    digest: dict[str, Any]


def stored_constraints(run: Run) -> Constraints:
    """The constraints the run was started with (run.json), so a rebuilt report keeps its verdict; the
    hardware, unless given, is what the run's machine had."""
    values = dict(run.info.get("constraints") or {})
    values.setdefault("hardware", "gpu" if run.info.get("environment", {}).get("gpus") else "cpu")
    return Constraints.from_dict(values, f"{run.path / 'run.json'}: constraints")


def write_report(run: Run, constraints: Constraints | None = None) -> Report:
    check_writable(run.path, "report:")
    constraints = constraints or stored_constraints(run)
    digest = make_digest(run)
    verdict = recommend(run, constraints)
    results = {
        "schema": SCHEMA_VERSION,
        "bakeoff": __version__,
        "verdict": verdict.to_dict(),
        **digest,
    }
    files = {
        "report.html": html.render(run, digest, verdict),
        "summary.md": markdown.render(digest, verdict),
        "results.json": json.dumps(clean(results), indent=2, default=str, allow_nan=False) + "\n",
    }
    paths = []
    for name, text in files.items():
        path = run.path / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # a report being rebuilt is never seen half-written
        paths.append(path)
    return Report(paths, verdict, digest)
