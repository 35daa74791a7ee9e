"""report.html of a real run in headless Chromium: no console error, no broken image, no network, the
verdict and every section visible. The screenshot is kept for people to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from bakeoff.report.html import SECTIONS
from tests.report.browser import open_page

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_report_renders_in_chromium_with_every_section(
    quick_run: Path, browser: Browser, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    check = open_page(
        quick_run / "report.html",
        shot,
        browser=browser,
        expect=(*[f"#{key}" for key in SECTIONS], "#verdict .headline", "svg"),
        text_of="#verdict .headline",
    )
    assert check.clean, check.summary()
    assert check.text and ("PyTorch" in check.text or "TensorFlow" in check.text or "No " in check.text)
    assert check.title.startswith("bakeoff: simplenet")
    assert shot.stat().st_size > 50_000  # a full page of tables and charts, not a blank one
    SCREENSHOTS.mkdir(exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / "report.png")
