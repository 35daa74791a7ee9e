"""Runs the catalogue over a run: one checked claim per entry, in the catalogue's order; and, for
`bakeoff compare`, the claims whose status differs between two runs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bakeoff.claims.catalogue import CLAIMS, Claim
from bakeoff.claims.rules import NOT_MEASURED, RULES, UNDECIDED, Finding
from bakeoff.errors import UsageError
from bakeoff.measure import DEFAULT_MARGIN
from bakeoff.measure.guard import noisy_stages
from bakeoff.results.run import Run
from bakeoff.results.runs import QUICK_UNDECIDED_STAGES, QUICK_WHY, was_quick


@dataclass(frozen=True)
class Checked:
    claim: Claim
    finding: Finding

    @property
    def status(self) -> str:
        return self.finding.status

    def to_dict(self, margin: float) -> dict[str, Any]:
        f = self.finding
        return {
            **self.claim.to_dict(),
            "status": f.status,
            "summary": f.summary,
            "comparisons": [{**c.to_dict(), "sentence": c.sentence(margin)} for c in f.comparisons],
            "notes": list(f.notes),
        }


def run_margin(run: Run, margin: float | None) -> float:
    """`margin`, or the one the run was started with (or the default)."""
    if margin is None:
        margin = float(run.info.get("options", {}).get("margin", DEFAULT_MARGIN))
    if not 0 <= margin < 1:
        raise UsageError(f"--margin {margin}: a share from 0 up to 1, e.g. 0.05 for ±5%")
    return margin


def check_claims(run: Run, margin: float | None = None) -> list[Checked]:
    margin = run_margin(run, margin)
    return [Checked(claim, _decide(claim, run, margin)) for claim in CLAIMS]


def _decide(claim: Claim, run: Run, margin: float) -> Finding:
    try:
        finding = RULES[claim.rule](run, margin)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        # A stage whose records lack what the rule reads must not take the report down with it: the claim
        # says which field was missing, and the rule's docstring says which shape it expects.
        shape = f"{claim.stage} records do not have the shape rules.{claim.rule} reads"
        why = f"{shape} ({type(exc).__name__}: {exc})"
        return Finding(NOT_MEASURED, why)
    if finding.status == NOT_MEASURED:
        return replace(finding, summary=f"{finding.summary}; needs {claim.needs}")
    if was_quick(run.info) and claim.stage in QUICK_UNDECIDED_STAGES and finding.status != UNDECIDED:
        # As the verdict: a quick run shows training and inference speed but does not decide them.
        return replace(finding, status=UNDECIDED, summary=f"{QUICK_WHY}; measured: {finding.summary}")
    busy = noisy_stages(run.info.get("guard")).get(claim.stage)
    if busy and finding.status != UNDECIDED:
        # Numbers taken while other programs ran may be theirs: shown, but they decide nothing.
        why = f"the machine was busy during the {claim.stage} stage ({busy}); measured: {finding.summary}"
        return replace(finding, status=UNDECIDED, summary=why)
    return finding


def claims_json(checked: list[Checked], margin: float) -> dict[str, Any]:
    return {"margin": margin, "claims": [c.to_dict(margin) for c in checked]}


@dataclass(frozen=True)
class Change:
    id: str
    claim: str
    before: str
    after: str
    summary: str  # what the second run says

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "claim": self.claim,
            "before": self.before,
            "after": self.after,
            "summary": self.summary,
        }


def status_changes(a: Run, b: Run, margin: float | None = None) -> list[Change]:
    """Claims whose status in run `b` differs from run `a`, both judged at one margin (`b`'s unless given),
    so a change is the measurements', not the margin's."""
    margin = run_margin(b, margin)
    before = {c.claim.id: c for c in check_claims(a, margin)}
    return [
        Change(c.claim.id, c.claim.claim, before[c.claim.id].status, c.status, c.finding.summary)
        for c in check_claims(b, margin)
        if c.claim.id in before and before[c.claim.id].status != c.status
    ]
