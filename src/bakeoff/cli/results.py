"""Commands that read finished (or stopped) runs back, measuring nothing: `report`, `recommend`, `claims`,
`runs`, `compare`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bakeoff.cli.options import (
    Config,
    CsvFlag,
    Deploy,
    Goal,
    Hardware,
    JsonFlag,
    Margin,
    Out,
    RunDir,
    RunMargin,
    Team,
    constraint_flags,
)
from bakeoff.cli.output import console, print_csv, print_json
from bakeoff.measure import DEFAULT_MARGIN


def report(
    run_dir: RunDir,
    goal: Goal = None,
    team: Team = None,
    deploy: Deploy = None,
    hardware: Hardware = None,
    config: Config = None,
    margin: RunMargin = None,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild report.html, summary.md and results.json of a run from its records, without measuring.

    Works on a run that stopped halfway: the report says which stages are missing. The verdict uses
    the constraints the run was started with unless flags or --config change them.
    """
    from bakeoff.report.build import write_report
    from bakeoff.report.constraints import for_run

    run, constraints = for_run(run_dir, constraint_flags(goal, team, deploy, hardware), config, None)
    built = write_report(run, constraints, margin)
    if as_json:
        print_json({"files": [str(f) for f in built.files], "verdict": built.verdict.to_dict()})
        return
    out = console()
    if run.skipped_note:
        out.print(f"[yellow]warning:[/] {run.skipped_note}", highlight=False)
    if run.missing or not run.finished:
        out.print(
            f"[yellow]partial run:[/] no records for {', '.join(run.missing) or 'its last cases'}",
            highlight=False,
        )
    out.print(f"[bold]verdict:[/] {built.verdict.headline}", highlight=False)
    for path in built.files:
        out.print(f"wrote {path}", highlight=False)


def recommend(
    run_dir: RunDir,
    goal: Goal = None,
    team: Team = None,
    deploy: Deploy = None,
    hardware: Hardware = None,
    config: Config = None,
    margin: RunMargin = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the verdict of a run for your constraints, from its stored records.

    Every reason quotes a number measured in that run; a side wins a dimension only when the whole
    confidence interval of its advantage lies outside the practical margin. Unset constraints are
    asked for when a terminal is attached.
    """
    from bakeoff.report.constraints import for_run
    from bakeoff.report.terminal import verdict_parts
    from bakeoff.report.verdict import recommend as decide

    interactive = not as_json and sys.stdin.isatty() and sys.stdout.isatty()
    flags = constraint_flags(goal, team, deploy, hardware)
    run, constraints = for_run(run_dir, flags, config, _prompt if interactive else None)
    verdict = decide(run, constraints, margin)
    if as_json:
        print_json(verdict.to_dict())
        return
    out = console()
    for part in verdict_parts(verdict):
        out.print(part)


def claims(run_dir: RunDir, margin: RunMargin = None, as_json: JsonFlag = False) -> None:
    """Check the seed article's claims against a run: holds, does not hold, no practical difference, not
    decided, or not measured (and what would measure it).

    A claim holds or fails only when the whole 95% CI of the comparison lies outside the practical margin;
    every row quotes the numbers and intervals it was decided on.
    """
    from bakeoff.claims.check import check_claims, claims_json, run_margin
    from bakeoff.claims.render import terminal_table
    from bakeoff.results.run import load_run

    run = load_run(run_dir)
    margin = run_margin(run, margin)
    checked = check_claims(run, margin)
    if as_json:
        print_json({"run": str(run.path), **claims_json(checked, margin)})
        return
    out = console()
    if run.skipped_note:
        out.print(f"[yellow]warning:[/] {run.skipped_note}", highlight=False)
    out.print(terminal_table(checked, margin))


def _prompt(key: str, choices: list[str], default: str) -> str:
    from rich.prompt import Prompt

    return Prompt.ask(key, choices=choices, default=default)


def runs(out: Out = Path("bakeoff-runs"), as_json: JsonFlag = False, as_csv: CsvFlag = False) -> None:
    """List the runs under --out, newest first: model, date, machine, headline numbers."""
    from bakeoff.report.runs import runs_table
    from bakeoff.results.runs import list_runs, runs_json

    rows = list_runs(out)
    if as_json:
        print_json(runs_json(rows))
        return
    if as_csv:
        print_csv(runs_json(rows))
        return
    if not rows:
        console().print(f"no runs under {out} (`bakeoff run` makes one)", highlight=False)
        return
    console().print(runs_table(rows))


def compare(
    run_a: Annotated[Path, typer.Argument(help="The baseline run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The run compared with it.")],
    margin: Margin = DEFAULT_MARGIN,
    absolute: Annotated[
        bool,
        typer.Option(
            "--absolute",
            help="Judge raw ratios. By default each case is judged against its stage's common shift (the "
            "median of all its cases), since on a shared machine the speed itself moves between runs; on a "
            "dedicated machine --absolute also flags a slowdown every case shares.",
        ),
    ] = False,
    as_json: JsonFlag = False,
    as_csv: CsvFlag = False,
) -> None:
    """Compare two runs case by case: ratio B/A with a 95% CI over rounds, regressions flagged.

    A regression is a slowdown beyond the practical margin over the whole CI, an accuracy drop or a
    case that failed in B only. Warns when the machines, library versions, models or depths differ;
    runs of different models or options are shown but nothing is called a regression. Exits 1 on a
    regression, so it can gate CI.
    """
    from bakeoff.claims.check import status_changes
    from bakeoff.claims.render import changes_table
    from bakeoff.report.compare import compare_tables
    from bakeoff.results.compare import compare as diff
    from bakeoff.results.run import load_run

    a, b = load_run(run_a), load_run(run_b)
    result = diff(a, b, threshold=margin, absolute=absolute)
    changed = status_changes(a, b)
    if as_json:
        print_json({**result.to_dict(), "claims_changed": [c.to_dict() for c in changed]})
    elif as_csv:
        print_csv([row.to_dict() for row in result.speed])
    else:
        out = console()
        for note in (a.skipped_note, b.skipped_note):
            if note:
                out.print(f"[yellow]warning:[/] {note}", highlight=False)
        for part in compare_tables(result):
            out.print(part)
        if changed:
            out.print(changes_table(changed))
    if result.regressions:
        raise typer.Exit(1)


COMMANDS = (report, recommend, claims, runs, compare)
