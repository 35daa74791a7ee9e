"""What `bakeoff compare` finds: the thresholds and verdict words, one row type per kind of finding
(speed, quality, failed cases) and the Comparison that holds them, as the terminal tables show them and
`--json` writes them. compare.py holds the rule that fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bakeoff.measure import DEFAULT_MARGIN
from bakeoff.measure.stats import Ratio
from bakeoff.results.run import Run
from bakeoff.results.runs import machine_summary, was_quick
from bakeoff.results.store import clean

# The practical margin: a change is a regression only where its whole CI lies beyond it.
SPEED_THRESHOLD = DEFAULT_MARGIN
# Classification: an accuracy drop of more than this many percentage points is a regression.
ACCURACY_POINTS = 0.5
# Regression task (score stored as -MSE): an MSE more than this much worse (relative) is a regression.
MSE_RELATIVE = 0.05

REGRESSION = "regression"
IMPROVEMENT = "improvement"
SAME = "no significant difference"
NO_PRACTICAL_DIFFERENCE = "no practical difference"
# Inside the stage's run-to-run spread (wider than --margin) but not inside --margin: the two runs
# cannot tell this case apart, which is not the same as showing it unchanged.
WITHIN_SPREAD = "within the run-to-run spread"
# What a regression or improvement is called between runs that are not like for like.
CHANGED = "changed (not like for like)"
# A training mode's regression or improvement whose step times are noisy in either run: shown, not called.
NOISY_TRAINING = "not judged: noisy training window"
# The same for an input pipeline's passes, timed in one worker process of each run as well.
NOISY_PIPELINE = "not judged: noisy pipeline window"
# Stages timed in one worker process per run, and what a noisy regression or improvement there is called.
NOT_JUDGED_WHEN_NOISY = {"train": NOISY_TRAINING, "pipeline": NOISY_PIPELINE}
MINOR_SLOWDOWN = "minor slowdown"
MINOR_SPEEDUP = "minor speedup"
NOT_COMPARED = "not compared"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class SpeedRow:
    """One case measured in both runs: medians, the ratio B/A with its CI, and the verdict."""

    stage: str  # train | pipeline | infer
    case: str  # training mode, pipeline, runtime/artifact
    batch: int | None  # inference only
    metric: str  # "step ms", "samples/s", "latency ms"
    higher_is_better: bool
    a: float  # median of A, in the metric's unit
    b: float
    n_a: int
    n_b: int
    ratio: Ratio | None  # None: a run kept no raw samples, so no interval
    verdict: str
    noisy: bool  # either side's IQR/median above 10%: the report warns
    # The ratio divided by its stage's common shift (compare.stage_shifts), which the verdict judges;
    # None when judged on the raw ratio (--absolute, or too few cases in the stage).
    relative: Ratio | None = None
    # The practical margin the verdict used: --margin, or the stage's run-to-run spread between the two
    # runs where that is wider (compare.stage_spreads). None: no ratio was judged.
    margin: float | None = None

    @property
    def slowdown(self) -> float | None:
        """How many times slower B is than A (below 1: faster), whatever the metric's direction."""
        if self.ratio is None:
            return None
        return 1.0 / self.ratio.ratio if self.higher_is_better else self.ratio.ratio

    @property
    def judged_slowdown(self) -> float | None:
        """The slowdown the verdict judged: against the stage's shift where there is one."""
        r = self.relative or self.ratio
        if r is None:
            return None
        return 1.0 / r.ratio if self.higher_is_better else r.ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "case": self.case,
            "batch": self.batch,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "a": self.a,
            "b": self.b,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "ratio": self.ratio.to_dict() if self.ratio else None,
            "relative_ratio": self.relative.to_dict() if self.relative else None,
            "slowdown": self.slowdown,
            "verdict": self.verdict,
            "margin": self.margin,
            "noisy": self.noisy,
        }


@dataclass(frozen=True)
class QualityRow:
    """A score (validation accuracy, artifact accuracy, MSE, parity diff, gate) in both runs."""

    stage: str
    case: str
    metric: str  # "val acc", "accuracy", "MSE", "gate", "max abs output diff"
    a: float | str | None
    b: float | str | None
    change: str  # "-1.20 pts", "MSE +8.0%", "pass -> fail", ""
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "case": self.case,
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "change": self.change,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class StatusRow:
    """A case that failed in at least one of the runs."""

    stage: str
    case: str
    a: str  # ok | failed
    b: str
    verdict: str  # regression (ok -> failed) | fixed | still failing
    message: str  # the failure's own message

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "case": self.case,
            "a": self.a,
            "b": self.b,
            "verdict": self.verdict,
            "message": self.message,
        }


@dataclass(frozen=True)
class Comparison:
    a: Run
    b: Run
    threshold: float
    warnings: list[str] = field(default_factory=list)
    speed: list[SpeedRow] = field(default_factory=list)
    quality: list[QualityRow] = field(default_factory=list)
    status: list[StatusRow] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)  # "stage case" measured in A only
    only_b: list[str] = field(default_factory=list)
    unlike: str = ""  # why A and B are not like for like (then nothing is a regression), or ""
    shifts: dict[str, float] = field(default_factory=dict)  # stage -> median slowdown of its cases
    spreads: dict[str, float] = field(default_factory=dict)  # stage -> run-to-run spread of its cases
    absolute: bool = False  # judged on raw ratios, without the stages' shifts

    @property
    def regressions(self) -> list[SpeedRow | QualityRow | StatusRow]:
        rows: list[SpeedRow | QualityRow | StatusRow] = [*self.speed, *self.quality, *self.status]
        return [r for r in rows if r.verdict == REGRESSION]

    @property
    def improvements(self) -> list[SpeedRow | QualityRow | StatusRow]:
        rows: list[SpeedRow | QualityRow | StatusRow] = [*self.speed, *self.quality, *self.status]
        return [r for r in rows if r.verdict in (IMPROVEMENT, "fixed")]

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON (NaN as null) for `bakeoff compare --json`."""
        return clean(
            {
                "a": _run_ref(self.a),
                "b": _run_ref(self.b),
                "rule": rule_text(self.threshold, self.absolute),
                "threshold": self.threshold,
                "warnings": self.warnings,
                "not_like_for_like": self.unlike or None,
                "stage_shifts": self.shifts,
                "stage_spreads": self.spreads,
                "speed": [r.to_dict() for r in self.speed],
                "quality": [r.to_dict() for r in self.quality],
                "status": [r.to_dict() for r in self.status],
                "only_a": self.only_a,
                "only_b": self.only_b,
                "regressions": len(self.regressions),
                "improvements": len(self.improvements),
            }
        )


def _run_ref(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.path.name,
        "path": str(run.path),
        "model": run.model,
        "started_at": run.info.get("started_at"),
        "quick": was_quick(run.info),
        "machine": machine_summary(run.info.get("environment") or {}),
    }


def rule_text(threshold: float = SPEED_THRESHOLD, absolute: bool = False) -> str:
    against = "" if absolute else ", against its stage's common shift and in the raw ratio,"
    spread = "" if absolute else " (or the stage's run-to-run spread, where wider)"
    return (
        f"ratio = B's median / A's median, 95% CI bootstrapped over rounds, then calls; regression: B "
        f"slower{against} by more than the ±{threshold:.0%} margin{spread} over the whole CI, an accuracy "
        f"drop over {ACCURACY_POINTS} points (MSE {MSE_RELATIVE:.0%} worse), a gate pass -> fail, or a case "
        "ok in A and failed in B"
    )
