"""docs/commands.md is the reference generated from the commands, and stays in step with them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer.main
from typer.core import TyperGroup

from bakeoff.cli import app
from bakeoff.cli.reference import REGENERATE, render

DOCS = Path(__file__).parents[2] / "docs" / "commands.md"


def reference(*args: str, columns: str = "200") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bakeoff.cli.reference", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": columns},
        check=False,
    )


def test_docs_commands_md_is_current() -> None:
    assert DOCS.is_file(), f"docs/commands.md is missing: run `{REGENERATE}`"
    assert DOCS.read_text(encoding="utf-8") == render(app), (
        f"docs/commands.md is out of date with the CLI: run `{REGENERATE}` and commit it"
    )


def test_every_command_and_option_is_in_the_reference() -> None:
    text = DOCS.read_text(encoding="utf-8")
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    for name, command in group.commands.items():
        section = text.split(f"\n## bakeoff {name}\n", 1)
        assert len(section) == 2, f"`bakeoff {name}` has no section in docs/commands.md"
        body = section[1].split("\n## ", 1)[0]
        for param in command.params:
            for flag in [*param.opts, *param.secondary_opts]:
                assert f"`{flag}`" in body, f"`bakeoff {name} {flag}` is missing from docs/commands.md"


def test_check_passes_whatever_the_terminal_width() -> None:
    result = reference("--check", str(DOCS), columns="40")
    assert result.returncode == 0, result.stderr


def test_check_of_a_stale_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    stale = tmp_path / "commands.md"
    stale.write_text("# bakeoff commands\n", encoding="utf-8")
    result = reference("--check", str(stale))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"{stale} is out of date: run `{REGENERATE}`"]
    assert reference("--check", str(tmp_path / "none.md")).returncode == 1
    written = reference(str(stale))
    assert written.returncode == 0, written.stderr
    assert reference("--check", str(stale)).returncode == 0
