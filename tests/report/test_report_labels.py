"""Every chart of report.html in headless Chromium, for a dense net, a conv net and a regression model: no
label of a chart drawn over another. The full-page screenshots are kept in test-artifacts/ to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.report.browser import open_page

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RUNS = {"simplenet": "quick_run", "lenet": "lenet_run", "regression": "regression_run"}
# Charts of a run with parity, training, export and inference: parity; training throughput, step times,
# losses, time to accuracy, utilization; latency, inference throughput, cold start; artifacts. The
# simplenet run also has the input-pipeline chart.
MIN_CHARTS = 10


@pytest.mark.parametrize("name", list(RUNS))
def test_no_chart_label_covers_another(
    name: str, request: pytest.FixtureRequest, browser: Browser, tmp_path: Path
) -> None:
    run: Path = request.getfixturevalue(RUNS[name])
    shot = tmp_path / f"report-{name}.png"
    check = open_page(
        run / "report.html", shot, browser=browser, expect=("svg",), viewport=(1400, 900), labels=True
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / f"report-{name}.png")  # kept also when the test fails, to see why
    assert check.clean, check.summary()
    assert check.charts >= MIN_CHARTS, f"only {check.charts} charts with text were checked"
