"""docs/commands.md, the command reference, rendered from the commands themselves.

For each command: its usage line, its help, and a table each of its arguments and options (name, type,
default, help), read from the click parameters Typer builds, never through Rich, so the text is the
same whatever the terminal's width and whether or not output goes to one.

    python -m bakeoff.cli.reference docs/commands.md          # (re)writes it
    python -m bakeoff.cli.reference --check docs/commands.md  # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import typer
import typer.main

REGENERATE = "python -m bakeoff.cli.reference docs/commands.md"
_NAMES = {bool: "flag", int: "integer", float: "number", str: "text", Path: "path"}


def render(app: typer.Typer, prog: str = "bakeoff") -> str:
    """The reference as Markdown: an index of the commands, then a section per command."""
    group: Any = typer.main.get_command(app)
    root = group.context_class(group, info_name=prog)
    commands = [(name, group.commands[name]) for name in group.list_commands(root)]
    commands = [(name, c) for name, c in commands if not c.hidden]
    index = [
        f"| [`{name}`](#{prog}-{name}) | {_cell((_unwrap(c.help or '') or [''])[0])} |"
        for name, c in commands
    ]
    blocks = [
        f"# {prog} commands",
        f"<!-- Generated from the CLI by `{REGENERATE}`. Do not edit:\n"
        "change the commands' docstrings and option help in src/bakeoff/cli/, then regenerate. -->",
        *_paragraphs(group.help or ""),
        "\n".join(["| command | what it does |", "| --- | --- |", *index]),
        "Every command also takes `--help`.",
    ]
    for name, command in commands:
        ctx = command.context_class(command, info_name=name, parent=root)
        usage = " ".join([prog, name, *command.collect_usage_pieces(ctx)])
        blocks += [f"## {prog} {name}", f"```\n{usage}\n```", *_paragraphs(command.help or "")]
        params = [p for p in command.params if not getattr(p, "hidden", False)]
        for kind in ("argument", "option"):
            rows = [_row(p) for p in params if p.param_type_name == kind]
            if rows:
                blocks.append(
                    "\n".join([f"| {kind} | type | default | help |", "| --- | --- | --- | --- |", *rows])
                )
    return "\n\n".join(blocks) + "\n"


def _row(param: Any) -> str:
    names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
    return f"| {names} | {_type(param)} | {_default(param)} | {_cell(getattr(param, 'help', None) or '')} |"


def _type(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:  # Typer's own parameters
        name = _NAMES.get(_bare(descriptor.annotation), "text")
    else:  # plain click parameters
        name = {"integer range": "integer", "float": "number", "float range": "number"}.get(
            param.type.name, param.type.name
        )
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None:
        name += f", at least {low}"
    if high is not None:
        name += f", at most {high}"
    return name + (", repeatable" if param.multiple else "")


def _bare(annotation: Any) -> Any:
    """int for int, int | None, list[int] and list[int] | None."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) in (list, tuple):
        annotation = typing.get_args(annotation)[0]
    return annotation


def _default(param: Any) -> str:
    if param.required:
        return "required"
    default = param.default
    if getattr(param, "is_flag", False):
        return "on" if default else "off"
    if default is None:
        return ""
    return f"`{default}`" if str(default) else '`""`'


def _unwrap(text: str) -> list[str]:
    """The paragraphs of a help text, each on one line, whatever the docstring's wrapping."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _paragraphs(text: str) -> list[str]:
    return [_escape(p) for p in _unwrap(text)]


def _cell(text: str) -> str:
    """Text for a table cell: on one line, escaped, its pipes too."""
    return _escape(" ".join(text.split())).replace("|", "\\|")


def _escape(text: str) -> str:
    """Backslash-escapes what a Markdown renderer would read as markup (<name> as a tag, * as emphasis)
    outside `code spans`, which stay as they are."""
    parts = text.split("`")
    tail = parts.pop() if len(parts) % 2 == 0 else None  # after an unpaired backtick: plain text
    escaped = "`".join(part if i % 2 else _plain(part) for i, part in enumerate(parts))
    return escaped if tail is None else escaped + "\\`" + _plain(tail)


def _plain(text: str) -> str:
    return re.sub(r"([\\<*])", r"\\\1", text)


def main(argv: list[str] | None = None) -> int:
    from bakeoff.cli import app

    parser = argparse.ArgumentParser(
        prog="python -m bakeoff.cli.reference", description="Writes or checks the command reference."
    )
    parser.add_argument("path", type=Path, help="the Markdown file, e.g. docs/commands.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    text = render(app)
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.is_file() else None
        if current != text:
            what = "does not exist" if current is None else "is out of date"
            print(f"{args.path} {what}: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
