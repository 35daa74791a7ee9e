"""Deployment output folders are checked before any training or export work starts."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import bakeoff


def test_export_into_an_impossible_folder_fails_at_once_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    started = time.perf_counter()
    result = bakeoff("export", "simplenet", "--target", "onnx", "--to", str(blocker / "deploy"))
    assert result.returncode == 2, result.stderr
    assert "cannot write there" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert time.perf_counter() - started < 20  # no twin was trained, nothing was exported
