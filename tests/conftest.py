"""Shared test helpers: the repo's fixture folder and a runner for the real `bakeoff` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# The machine guard measures in every run but judges none busy in tests: a test about compare or the
# verdict must not change its answer because a CI machine had a neighbour. tests/measure/test_guard.py
# turns it back on.
os.environ["BAKEOFF_GUARD"] = "off"
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


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real `bakeoff run simplenet --quick` per test session, shared by the report, history and
    tracking tests (it takes about half a minute). Tests must not write into it: copy it first."""
    out = tmp_path_factory.mktemp("quick-runs")
    result = bakeoff("run", "simplenet", "--quick", "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run
