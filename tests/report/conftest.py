"""One headless Chromium for the report's browser tests, or a loud failure saying what was tried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.report.browser import ChromiumUnavailable, chromium_browser, ensure_chromium


@pytest.fixture(scope="session")
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
