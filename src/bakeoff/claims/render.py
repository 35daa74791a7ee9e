"""The checked claims shown three ways: report.html's section, summary.md's table, a terminal table.

Each row carries the claim (with where the article says it), the status, the numbers with their
intervals, and a link to the report section that holds the evidence.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bakeoff.claims.check import Change, Checked
from bakeoff.claims.rules import FAILS, HOLDS, NOT_MEASURED, SAME, STATUSES, UNDECIDED
from bakeoff.report import markup

TITLE = "The article's claims, checked"
# Colours say how much the run says, not whether the article was right: a claim that does not hold is a
# finding, as is one that holds.
_CSS_CLASS = {HOLDS: "ok", FAILS: "bad", SAME: "ok", UNDECIDED: "muted", NOT_MEASURED: "muted"}
_RICH_STYLE = {HOLDS: "green", FAILS: "red", SAME: "cyan", UNDECIDED: "yellow", NOT_MEASURED: "dim"}


def intro(margin: float) -> str:
    return (
        "Each testable claim of the seed article against this run's records. A claim holds or fails only "
        f"when the whole 95% interval lies outside the ±{margin:.0%} practical margin; inside it, "
        "no practical difference; an interval across it decides nothing."
    )


def measured(c: Checked, margin: float) -> list[str]:
    """The lines under a claim: its comparisons (numbers and intervals), then its notes."""
    return [cmp.sentence(margin) for cmp in c.finding.comparisons] + list(c.finding.notes)


def counts(checked: list[Checked]) -> str:
    tally = {status: sum(c.status == status for c in checked) for status in STATUSES}
    return ", ".join(f"{n} {status}" for status, n in tally.items() if n)


def html_section(checked: list[Checked], margin: float) -> str:
    rows = []
    for c in checked:
        claim = markup.Raw(
            f'<span id="claim-{c.claim.id}">{escape(c.claim.claim)}</span><br>'
            f'<span class="muted">{escape(c.claim.section)}: &ldquo;{escape(c.claim.quote)}&rdquo;</span>'
        )
        status = markup.Raw(f'<span class="{_CSS_CLASS[c.status]}">{escape(c.status)}</span>')
        detail = [f"<b>{escape(c.finding.summary)}</b>"] + [escape(line) for line in measured(c, margin)]
        rows.append([claim, status, markup.Raw("<br>".join(detail)), _evidence_link(c)])
    return markup.section(
        "claims",
        f'<p class="muted">{escape(intro(margin))}</p>',
        f"<p>{escape(counts(checked))}.</p>",
        markup.table(["the article says", "here", "measured", "evidence"], rows),
    )


def _evidence_link(c: Checked) -> Any:
    # A stage that has no report section yet (serve, distributed, ...) gets its link when it gets one.
    key = c.claim.evidence
    if key not in markup.SECTIONS or c.status == NOT_MEASURED:
        return None
    return markup.Raw(f'<a href="#{key}">{escape(markup.SECTIONS[key])}</a>')


def markdown_lines(checked: list[Checked], margin: float) -> list[str]:
    lines = [f"### {TITLE}", "", intro(margin), "", "| claim | here | measured |", "|---|---|---|"]
    for c in checked:
        detail = "; ".join([c.finding.summary, *measured(c, margin)])
        link = (
            f" ([evidence](report.html#{c.claim.evidence}))"
            if c.claim.evidence in markup.SECTIONS and c.status != NOT_MEASURED
            else ""
        )
        lines.append(f"| {_md(c.claim.claim)} | **{c.status}** | {_md(detail)}{link} |")
    return lines


def terminal_table(checked: list[Checked], margin: float, title: str = TITLE) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{title} (margin ±{margin:.0%})", title_justify="left", show_lines=True, expand=True)
    table.add_column("claim", ratio=3, overflow="fold")
    table.add_column("here", no_wrap=True)
    table.add_column("measured", ratio=5)
    for c in checked:
        # Text, not markup: findings quote case names like [1, 28, 28] that Rich would read as tags.
        detail = Text(c.finding.summary, style="bold")
        for line in measured(c, margin):
            detail.append("\n" + line)
        table.add_row(
            Text(f"{c.claim.id}: {c.claim.claim}"), Text(c.status, style=_RICH_STYLE[c.status]), detail
        )
    return table


def changes_table(changes: list[Change]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="claims whose status changed (A -> B)", title_justify="left")
    for column in ("claim", "A", "B", "B measured"):
        table.add_column(column)
    for ch in changes:
        table.add_row(
            Text(ch.id), Text(ch.before), Text(ch.after, style=_RICH_STYLE[ch.after]), Text(ch.summary)
        )
    return table


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
