"""Tables that fit the terminal: the wide table where it fits whole, else one labelled block per row.

Rich squeezes a table that is too wide until every column ends in "…"; at 80 columns a ten-column table
of run names says nothing. The same rows as blocks (the lead cells as a heading, the rest as label:
value lines) stay readable at any width, and nothing is cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

Cell = str | Text
ELLIPSIS = "…"


class FittedTable:
    def __init__(
        self,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Cell]],
        *,
        lead: int = 1,
        right: Iterable[str] = (),
        styles: Sequence[str] | None = None,
        stacked: bool = False,
    ) -> None:
        self.title, self.columns, self.rows, self.lead = title, list(columns), [list(r) for r in rows], lead
        self.right = set(right)
        self.stacked = stacked  # blocks with a line per field rather than one line of fields
        self.styles = list(styles) if styles is not None else [""] * len(self.rows)

    def wide(self) -> Table:
        table = Table(title=self.title, title_justify="left")
        for column in self.columns:
            table.add_column(column, justify="right" if column in self.right else "left")
        for row, style in zip(self.rows, self.styles, strict=True):
            table.add_row(*row, style=style)
        return table

    def blocks(self) -> Iterable[tuple[int, Text | Table]]:
        """The title, then per row its lead cells as a heading and the rest as one indented line."""
        yield 0, Text(self.title, style="italic")
        for row, style in zip(self.rows, self.styles, strict=True):
            head = Text("  ").join(_text(c) for c in row[: self.lead] if _text(c).plain)
            head.stylize(style or "bold")
            yield 0, head
            fields = [
                (label, _text(cell))
                for label, cell in zip(self.columns[self.lead :], row[self.lead :], strict=True)
                if _text(cell).plain not in ("", "-")
            ]
            if self.stacked:
                grid = Table.grid(padding=(0, 1))
                grid.add_column(style="dim", no_wrap=True)
                grid.add_column()
                for label, cell in fields:
                    grid.add_row(label, cell)
                yield 2, grid
            else:
                yield 2, Text(" · ").join(Text.assemble((label, "dim"), " ", cell) for label, cell in fields)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.wide()
        if self._fits(console, options, table):
            yield table
        else:
            for indent, line in self.blocks():
                yield Padding(line, (0, 0, 0, indent))

    def _fits(self, console: Console, options: ConsoleOptions, table: Table) -> bool:
        """Rendered at this width, no cell is cut: Rich marks a cut with an ellipsis."""
        cells = " ".join(_text(c).plain for row in self.rows for c in row)
        if ELLIPSIS in cells:
            return True  # an ellipsis of our own would hide theirs; such tables are rare and short
        lines = console.render_lines(table, options, pad=False)
        return not any(ELLIPSIS in segment.text for line in lines for segment in line)


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)
