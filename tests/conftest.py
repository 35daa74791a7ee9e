"""Shared test helpers: the repo's fixture folder and a runner for the real `bakeoff` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
BAKEOFF = Path(sys.executable).parent / "bakeoff"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def bakeoff(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [str(BAKEOFF), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False
    )
