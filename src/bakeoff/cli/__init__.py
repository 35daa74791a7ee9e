"""The `bakeoff` command: parses arguments, calls the library, prints. Nothing else.

- `options.py`: every option more than one command takes, written once, and the parsers of option text;
- `output.py`: printing tables, lines and --json;
- `models.py`: zoo, show, parity (look at models; no run directory);
- `run.py`: run, train, pipeline, infer, export, convert (measure; each makes a run directory);
- `serve.py`: serve (one model server up until Ctrl-C);
- `results.py`: report, recommend, runs, compare (read runs back);
- `reference.py`: docs/commands.md, the command reference, rendered from these commands.

A new command is a function in the module of its group, added to that module's COMMANDS; its work goes
in the library (`bakeoff.stages`, `bakeoff.results`, `bakeoff.report`, ...), not here. Then regenerate
the reference: `python -m bakeoff.cli.reference docs/commands.md` (a test fails until it is).

Everything heavy is imported inside the commands, so `bakeoff --help` starts without torch,
TensorFlow, numpy or pydantic. A BakeoffError ends the command as one red line: exit 2 for bad usage,
1 for a failed check.
"""

from __future__ import annotations

import sys

import typer

from bakeoff.cli import models, results, run, serve
from bakeoff.errors import BakeoffError

app = typer.Typer(
    help="PyTorch or TensorFlow? bakeoff builds one model in both, with the same weights, proves they "
    "compute the same thing, and measures them. Start with `bakeoff zoo` and `bakeoff run`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain: "[default: physical cores]" and "[28, 28, 1]" are text, not Rich markup.
    rich_markup_mode=None,
)


# In this order in `bakeoff --help`.
for command in (*models.COMMANDS, *run.COMMANDS, *serve.COMMANDS, *results.COMMANDS):
    app.command()(command)


def main() -> None:
    try:
        app()
    except BakeoffError as exc:
        from rich.console import Console
        from rich.text import Text

        # A Text, not markup: messages quote shapes like [28, 28, 1] that Rich would read as tags.
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            Text("error: ", style="red") + Text(str(exc))
        )
        sys.exit(exc.exit_code)
