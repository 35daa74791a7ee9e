"""The Rich tables of `bakeoff compare`: warnings, speed per stage, quality, failed cases and the verdict."""

from __future__ import annotations

from rich.text import Text

from bakeoff.report.fit import Cell, FittedTable
from bakeoff.report.numbers import sci
from bakeoff.results.comparison import (
    CHANGED,
    IMPROVEMENT,
    MINOR_SLOWDOWN,
    MINOR_SPEEDUP,
    NO_PRACTICAL_DIFFERENCE,
    NOISY_PIPELINE,
    NOISY_TRAINING,
    NOT_COMPARED,
    NOT_JUDGED_WHEN_NOISY,
    REGRESSION,
    SAME,
    UNCHANGED,
    WITHIN_SPREAD,
    Comparison,
    QualityRow,
    SpeedRow,
    StatusRow,
    rule_text,
)

_STAGE_TITLES = {
    "train": "training step time, ms (first step excluded: compile/trace)",
    "pipeline": "input pipelines, samples/s per pass",
    "infer": "inference latency, ms per call",
}


def compare_tables(c: Comparison) -> list[FittedTable | Text]:
    """Header and warnings, one speed table per stage, quality, failures, cases in one run only, verdict."""
    parts: list[FittedTable | Text] = [
        Text(f"A: {c.a.path.name} ({c.a.model})\nB: {c.b.path.name} ({c.b.model})", style="bold"),
        Text(rule_text(c.threshold, c.absolute), style="dim"),
    ]
    wide = {stage: s for stage, s in c.spreads.items() if s > c.threshold}
    if wide:
        parts.append(
            Text(
                "the cases moved apart between the runs by up to "
                + ", ".join(f"±{s:.0%} ({stage})" for stage, s in wide.items())
                + " around their stage's shift (3 robust standard deviations): a regression must exceed "
                "that, not only the margin",
                style="dim",
            )
        )
    moved = {stage: s for stage, s in c.shifts.items() if not 1 / (1 + c.threshold) <= s <= 1 + c.threshold}
    for stage, shift in moved.items():
        how = f"{shift:.2f}x slower" if shift > 1 else f"{1 / shift:.2f}x faster"
        parts.append(
            Text(
                f"warning: every {stage} case moved together, B {how} at the median: the machine's speed "
                "(or a change every case shares); each case is judged against that shift "
                "(--absolute judges the raw ratios)",
                style="yellow",
            )
        )
    if c.unlike:
        parts.append(
            Text(
                f"not like for like: {c.unlike}; differences are shown, none is called a regression",
                style="yellow bold",
            )
        )
    if c.warnings:
        parts.append(Text("\n".join(f"warning: {w}" for w in c.warnings), style="yellow"))
    for stage in ("train", "pipeline", "infer"):
        rows = [r for r in c.speed if r.stage == stage]
        if rows:
            parts.append(_speed_table(stage, rows, c.threshold))
    quality = _quality_table(c.quality)
    if quality:
        parts.append(quality)
    if c.status:
        parts.append(_status_table(c.status))
    if c.only_a:
        parts.append(Text(f"only in A: {', '.join(c.only_a)}", style="dim"))
    if c.only_b:
        parts.append(Text(f"only in B: {', '.join(c.only_b)}", style="dim"))
    parts.append(_verdict(c))
    return parts


def _speed_table(stage: str, rows: list[SpeedRow], margin: float) -> FittedTable:
    infer = stage == "infer"
    columns = ["case", *(["batch"] if infer else []), "A", "B", "B/A", "95% CI", "verdict"]
    cells: list[list[Cell]] = [
        [
            r.case,
            *([str(r.batch)] if infer else []),
            _value(r.a, r.metric),
            _value(r.b, r.metric),
            f"{r.ratio.ratio:.2f}" if r.ratio else "-",
            f"{r.ratio.low:.2f}-{r.ratio.high:.2f}" if r.ratio else "-",
            _speed_verdict(r, margin),
        ]
        for r in rows
    ]
    styles = ["red bold" if r.verdict == REGRESSION else "" for r in rows]
    right = ("batch", "A", "B", "B/A", "95% CI")
    return FittedTable(_STAGE_TITLES.get(stage, stage), columns, cells, right=right, styles=styles)


def _value(x: float, metric: str) -> str:
    if x != x:  # NaN: no samples
        return "-"
    return f"{x:,.0f}" if metric == "samples/s" else f"{x:.3g}"


def _speed_verdict(r: SpeedRow, margin: float) -> Text:
    slow = r.judged_slowdown
    noisy = " (noisy)" if r.noisy else ""
    than = " than the stage" if r.relative else ""
    if r.verdict == REGRESSION and slow:
        return Text(f"REGRESSION: B {slow:.2f}x slower{than}{noisy}", style="red bold")
    if r.verdict == IMPROVEMENT and slow:
        return Text(f"improvement: B {1 / slow:.2f}x faster{than}{noisy}", style="green")
    if r.verdict in (MINOR_SLOWDOWN, MINOR_SPEEDUP) and slow:
        word = "slower" if r.verdict == MINOR_SLOWDOWN else "faster"
        change = abs(slow - 1) if word == "slower" else abs(1 / slow - 1)
        used = margin if r.margin is None else r.margin
        return Text(
            f"{r.verdict}: B {change:.1%} {word}{than}, maybe under the ±{used:.0%} margin{noisy}",
            style="yellow",
        )
    if r.verdict == NOT_COMPARED:
        return Text("not compared: no raw samples", style="dim")
    if r.verdict == CHANGED and slow:
        word = f"{slow:.2f}x slower" if slow > 1 else f"{1 / slow:.2f}x faster"
        return Text(f"{CHANGED}: B {word}{noisy}", style="yellow")
    if r.verdict in NOT_JUDGED_WHEN_NOISY.values() and slow:
        word = f"{slow:.2f}x slower" if slow > 1 else f"{1 / slow:.2f}x faster"
        times = "step times" if r.verdict == NOISY_TRAINING else "pass times"
        why = f"; its {times} spread over 10% of their median (IQR) in A or B"
        return Text(f"{r.verdict}: B {word}{than}{why}", style="yellow")
    if r.verdict == WITHIN_SPREAD:
        return Text(f"{WITHIN_SPREAD} (±{r.margin:.0%}){noisy}", style="dim")
    if r.verdict == NO_PRACTICAL_DIFFERENCE:
        return Text(f"{NO_PRACTICAL_DIFFERENCE}{noisy}")
    return Text(f"{SAME}{noisy}")


def _quality_table(rows: list[QualityRow]) -> FittedTable | None:
    # Scores that did not move fill a long table with nothing: show what moved, count the rest.
    if not rows:
        return None
    shown = [r for r in rows if r.verdict != UNCHANGED or r.a != r.b]
    cells: list[list[Cell]] = [
        [
            f"{r.stage} {r.case}",
            r.metric,
            _score(r.a, r.metric),
            _score(r.b, r.metric),
            r.change,
            {
                REGRESSION: Text("REGRESSION", style="red bold"),
                IMPROVEMENT: Text("improvement", style="green"),
            }.get(r.verdict, Text(r.verdict or "-")),
        ]
        for r in shown
    ]
    title = f"quality ({len(rows) - len(shown)} unchanged score(s) not shown)"
    styles = ["red bold" if r.verdict == REGRESSION else "" for r in shown]
    columns = ["case", "metric", "A", "B", "change", "verdict"]
    return FittedTable(title, columns, cells, right=("A", "B", "change"), styles=styles)


def _score(x: float | str | None, metric: str) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if metric == "max abs output diff":
        return sci(x)
    return f"{x:.4g}" if metric == "MSE" else f"{x:.4f}"


def _status_table(rows: list[StatusRow]) -> FittedTable:
    cells: list[list[Cell]] = [
        [
            f"{r.stage} {r.case}",
            r.a,
            r.b,
            Text(
                "REGRESSION" if r.verdict == REGRESSION else r.verdict,
                style={REGRESSION: "red bold", "fixed": "green"}.get(r.verdict, ""),
            ),
            r.message,
        ]
        for r in rows
    ]
    return FittedTable("cases that failed in a run", ["case", "A", "B", "verdict", "message"], cells)


def _verdict(c: Comparison) -> Text:
    bad, good = len(c.regressions), len(c.improvements)
    # Said on the last line too: a CI gate reading it must know what went unjudged.
    good_text = f"{good} improvement(s)"
    for verdict, what in ((NOISY_TRAINING, "training mode(s)"), (NOISY_PIPELINE, "pipeline case(s)")):
        noisy = sum(r.verdict == verdict for r in c.speed)
        if noisy:
            good_text += f", {noisy} {what} not judged (noisy window)"
    if bad:
        return Text(f"{bad} regression(s) in B; {good_text}", style="red bold")
    if c.unlike:
        return Text(f"not like for like ({c.unlike}): no regression is called", style="yellow bold")
    moved = [s for s, v in c.shifts.items() if not 1 / (1 + c.threshold) <= v <= 1 + c.threshold]
    if moved and not bad:
        return Text(
            f"no regressions in B against each stage's shift; {good_text} (but {', '.join(moved)} "
            "moved as a whole: see the warnings)",
            style="green bold",
        )
    caveat = " (but see the warnings above)" if c.warnings else ""
    return Text(f"no regressions in B; {good_text}{caveat}", style="green bold")
