"""The serve tests share the session's quick run (its keras-savedmodel artifact); BAKEOFF_SERVE_TEST_RUN may
name an existing run directory with an export instead, to iterate on these tests alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def exported(request: pytest.FixtureRequest) -> Path:
    given = os.environ.get("BAKEOFF_SERVE_TEST_RUN")
    if given:
        return Path(given)
    run: Path = request.getfixturevalue("quick_run")
    return run
