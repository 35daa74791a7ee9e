"""Writes a run's report.html, summary.md and results.json from its records alone (no re-measuring),
for a finished run or one that stopped halfway."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakeoff import __version__
from bakeoff.claims import render as claims_render
from bakeoff.claims.check import check_claims, claims_json, run_margin
from bakeoff.errors import BakeoffError
from bakeoff.measure.guard import advice, noisy_stages
from bakeoff.report import html, markdown
from bakeoff.report.constraints import stored_constraints
from bakeoff.report.digest import digest as make_digest
from bakeoff.report.verdict import Constraints, Verdict, recommend
from bakeoff.results.run import Run, load_run
from bakeoff.results.store import SCHEMA_VERSION, check_writable, clean


@dataclass
class Report:
    files: list[Path]
    verdict: Verdict
    digest: dict[str, Any]


def write_report(run: Run, constraints: Constraints | None = None, margin: float | None = None) -> Report:
    check_writable(run.path, "report:")
    constraints = constraints or stored_constraints(run)
    digest = make_digest(run)
    verdict = recommend(run, constraints, margin)
    claim_margin = run_margin(run, margin)
    claims = check_claims(run, claim_margin)
    results = {
        "schema": SCHEMA_VERSION,
        "bakeoff": __version__,
        "verdict": verdict.to_dict(),
        "claims": claims_json(claims, claim_margin),
        **digest,
    }
    files = {
        "report.html": html.render(run, digest, verdict, claims_render.html_section(claims, claim_margin)),
        "summary.md": markdown.render(digest, verdict, claims_render.markdown_lines(claims, claim_margin)),
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


def write_after_run(path: Path, constraints: Constraints | None, track: list[str]) -> dict[str, Any]:
    """The report of the run in `path`, then its tracking (`track`: mlflow, tensorboard). Both come after
    every measurement, so neither can disturb one. A failure is kept as "error", one line: the records
    are already safe on disk. Returns the files, the headline, what was tracked."""
    done: dict[str, Any] = {}
    try:
        run = load_run(path)
        built = write_report(run, constraints)
        done = {"files": [str(f) for f in built.files], "headline": built.verdict.headline}
        busy = noisy_stages(run.info.get("guard"))
        if busy:
            done["machine"] = advice(busy)
        if track:
            from bakeoff.results.tracking import track as log_to

            done["tracked"] = [log_to(kind, run, built.files) for kind in track]
    except BakeoffError as exc:
        done["error"] = str(exc)
    return done
