"""What `bakeoff.parity` and `bakeoff.run` return: the headline numbers as attributes, readable in a plain
REPL (`__repr__`) and shown inline by Jupyter (`_repr_html_`)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakeoff.twins.parity import ParityResult


@dataclass
class Parity:
    """A parity check of the user's model. `exact_max_abs`: for a torch object, how far the twin the
    workers ran is from the user's exact model (its torch.export .pt2); `folder`: where the handed-over
    files and the derived spec and twin are."""

    result: ParityResult
    folder: Path | None = None
    exact_max_abs: float | None = None
    atol: float = 1e-5

    @property
    def ok(self) -> bool:
        return self.result.passed and self.exact_ok

    @property
    def exact_ok(self) -> bool:
        return self.exact_max_abs is None or self.exact_max_abs <= self.atol

    @property
    def max_output_diff(self) -> float:
        return self.result.output_max_abs

    @property
    def first_divergent(self) -> str | None:
        return self.result.first_divergent

    @property
    def cause(self) -> str | None:
        return self.result.causes[0].text if self.result.causes else None

    def lines(self) -> list[str]:
        lines = [self.result.summary(), f"model: {self.result.model}"]
        if self.exact_max_abs is not None:
            verdict = "same" if self.exact_ok else "DIFFERENT"
            lines.append(
                f"your exact model (.pt2) against the torch twin: {verdict} outputs, "
                f"max diff {self.exact_max_abs:.2e}"
            )
        lines += [f"note: {n}" for n in self.result.notes]
        if self.folder is not None:
            lines.append(f"files: {self.folder}")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        head, *rest = self.lines()
        rows = "".join(
            f"<tr><td>{html.escape(d.layer)}</td><td>{html.escape(d.kind)}</td>"
            f"<td>{d.max_abs:.2e}</td><td>{'ok' if d.ok else 'DIFFERS'}</td></tr>"
            for d in self.result.layers
        )
        items = "".join(f"<li>{html.escape(line)}</li>" for line in rest)
        return (
            f'<div><b style="color:{colour}">{html.escape(head)}</b><ul>{items}</ul>'
            "<table><tr><th>layer</th><th>kind</th><th>max abs diff</th><th></th></tr>"
            f"{rows}</table></div>"
        )


@dataclass
class Run:
    """A finished run: its directory (records.jsonl, report.html, results.json), the verdict, and each
    dimension's winner; `failed` lists the checks that failed, one line each."""

    path: Path
    headline: str
    winners: dict[str, str | None]
    timings: dict[str, str]
    failed: list[str]
    parity: ParityResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @classmethod
    def read(cls, path: Path, latest: list[dict[str, Any]], parity: ParityResult | None) -> Run:
        from bakeoff.report.terminal import record_line

        results = path / "results.json"
        verdict = json.loads(results.read_text())["verdict"] if results.is_file() else {}
        winners = {d["name"]: d["winner"] for d in verdict.get("dimensions", [])}
        timed = [r for r in latest if r["stage"] in ("train", "infer", "pipeline") and r["status"] == "ok"]
        failed = [f"{r['stage']}/{r['case']}: {record_line(r)}" for r in latest if r["status"] == "failed"]
        return cls(
            path,
            verdict.get("headline", "(no verdict: the report could not be written)"),
            winners,
            {f"{r['stage']}/{r['case']}": record_line(r) for r in timed[:8]},
            failed,
            parity,
        )

    def lines(self) -> list[str]:
        lines = [f"verdict: {self.headline}", f"run directory: {self.path}"]
        if self.parity is not None:
            lines.append(self.parity.summary())
        lines += [f"{name}: {winner or 'no clear winner'}" for name, winner in self.winners.items()]
        lines += [f"{case}: {line}" for case, line in self.timings.items()]
        lines += [f"FAILED {line}" for line in self.failed]
        lines += [f"note: {n}" for n in self.notes]
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        """The run's own report.html, inline: an iframe of its text, so its styles stay its own."""
        if not self.report.is_file():
            return "<pre>" + html.escape(repr(self)) + "</pre>"
        page = html.escape(self.report.read_text(encoding="utf-8"), quote=True)
        link = html.escape(self.report.resolve().as_uri())
        return (
            f"<p><b>verdict:</b> {html.escape(self.headline)} "
            f'(<a href="{link}" target="_blank">{html.escape(str(self.report))}</a>)</p>'
            f'<iframe srcdoc="{page}" style="width:100%;height:600px;border:1px solid #ddd"></iframe>'
        )
