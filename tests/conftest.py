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
    """One real `bakeoff run --quick` (simplenet, every default stage) per test session, shared by the
    CLI, report, history and tracking tests (it takes about half a minute). Its terminal output is kept
    beside it in `stdout.txt`. Tests must not write into it: copy it first."""
    out = tmp_path_factory.mktemp("quick-runs")
    result = bakeoff("run", "--quick", "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    (out / "stdout.txt").write_text(result.stdout)
    return run


# `make test` runs the suite on two pytest-xdist workers (`--dist loadgroup`). A group stays on one
# worker, so a module- or session-scoped fixture is built once: by default a group is one test file;
# every test reading the shared quick runs is one group, and so is everything that builds or uses the
# onnx2tf converter environment (one folder on disk, not safe to build twice at once).
_SHARED_RUNS = {"quick_run", "lenet_run", "regression_run", "exported"}  # exported: the serve tests
_RUN_READERS = ("tests/report/test_report_claims.py", "tests/report/test_report_labels.py")
_ONNX2TF = ("tests/stages/export/converters/test_onnx2tf_env.py", "tests/stages/export/test_convert.py")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent.parent
    for item in items:
        path = Path(str(item.fspath)).relative_to(root).as_posix()
        # serve/servers/ first: its own `exported` fixture (an export-only run) is not the quick run's.
        if path.startswith("tests/stages/serve/servers/"):
            group = "serve-servers"  # one export of simplenet shared by the Triton, TorchServe and Ray tests
        elif _SHARED_RUNS & set(getattr(item, "fixturenames", ())) or path in _RUN_READERS:
            group = "shared-runs"
        elif path in _ONNX2TF:
            group = "onnx2tf"
        elif path.startswith("tests/stages/export/deploy/"):
            group = "deploy"
        else:
            group = path
        item.add_marker(pytest.mark.xdist_group(group))
