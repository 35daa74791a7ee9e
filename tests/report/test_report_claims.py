"""The article's claims on real quick runs of a dense net, a conv net and a regression model: every claim
gets a status with numbers or a stated reason, and no claim is decided by a difference inside the margin.
The terminal tables are kept in test-artifacts/ to read."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from bakeoff.claims.catalogue import CLAIMS
from bakeoff.claims.check import check_claims, run_margin
from bakeoff.claims.render import terminal_table
from bakeoff.claims.rules import FAILS, HOLDS, NOT_MEASURED, SAME, STATUSES
from bakeoff.results.run import load_run

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RUNS = {"simplenet": "quick_run", "lenet": "lenet_run", "regression": "regression_run"}


@pytest.mark.parametrize("name", list(RUNS))
def test_every_claim_has_a_status_with_numbers_or_a_reason(name: str, request: pytest.FixtureRequest) -> None:
    run = load_run(request.getfixturevalue(RUNS[name]))
    margin = run_margin(run, None)
    checked = check_claims(run)
    buffer = io.StringIO()
    Console(file=buffer, width=160).print(terminal_table(checked, margin))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"claims-{name}.txt").write_text(buffer.getvalue())

    assert [c.claim.id for c in checked] == [c.id for c in CLAIMS]
    for c in checked:
        assert c.status in STATUSES and c.finding.summary, c.claim.id
        if c.status == NOT_MEASURED:
            assert "needs" in c.finding.summary, c.claim.id  # and says what would measure it
        elif c.finding.comparisons:
            for cmp in c.finding.comparisons:
                outside = cmp.low > 1 + margin or cmp.high < 1 / (1 + margin)
                assert outside == (cmp.better in ("a", "b")), (c.claim.id, cmp)
            if c.status in (HOLDS, SAME):  # every comparison decided, none straddling the margin
                assert all(cmp.better != "undecided" for cmp in c.finding.comparisons), c.claim.id
            if c.status == FAILS:  # one decided difference against the claim is enough to refute it
                assert any(cmp.better in ("a", "b") for cmp in c.finding.comparisons), c.claim.id
        else:
            assert c.finding.notes, c.claim.id  # decided on exact facts, which it names
    # The run measured training and inference: the claims those stages decide are not "not measured".
    measured = {c.claim.id for c in checked if c.status != NOT_MEASURED}
    assert {"compile-vs-xla", "tflite-edge", "onnxruntime-extra", "tiny-differences"} - measured <= (
        {"compile-vs-xla"} if name != "simplenet" else set()  # the conv runs leave torch-compile out
    )
    page = (run.path / "report.html").read_text()
    assert all(f'id="claim-{c.id}"' in page for c in CLAIMS)
