"""One headless Chromium for the report's browser tests, or a loud failure saying what was tried; and the
real quick runs of a conv net and a regression model that the report tests read (one each per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.conftest import FIXTURES, bakeoff
from tests.report.browser import ChromiumUnavailable, chromium_browser, ensure_chromium

# torch-compile is left out of these runs: its first step costs minutes on a 2-core machine, and the
# simplenet run (`quick_run`) already charts every mode.
MODES = "torch-eager,keras-eager,keras-graph,keras-xla"
# The input-pipeline chart does not depend on the model: the simplenet run draws it.
STAGES = "parity,train,export,infer"


# Module scope: Playwright's sync API keeps an asyncio loop running in the main thread while it is open,
# and other tests in the same pytest worker (the serve stage's) need asyncio.run there.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        ensure_chromium()
        problem = ""
    except ChromiumUnavailable as error:
        problem = str(error)
    if problem:  # failed outside the `except`, so the message is not printed twice
        pytest.fail(problem, pytrace=False)
    with chromium_browser() as started:
        yield started


def _quick(tmp_path_factory: pytest.TempPathFactory, model: str) -> Path:
    out = tmp_path_factory.mktemp("quick-runs")
    result = bakeoff(
        "run", model, "--quick", "--stages", STAGES, "--modes", MODES, "--out", str(out), timeout=1800
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


@pytest.fixture(scope="session")
def lenet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bakeoff run lenet --quick` without the input pipelines and torch.compile. Read-only: copy it first."""
    return _quick(tmp_path_factory, "lenet")


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quick run of tests/fixtures/tiny_regression.yaml (scores are -MSE). Read-only: copy it first."""
    return _quick(tmp_path_factory, str(FIXTURES / "tiny_regression.yaml"))
