"""Options that cannot work are refused in one line before a run directory exists or a worker starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakeoff.errors import UsageError
from bakeoff.runner import check_stages
from tests.conftest import bakeoff


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "simplenet", "--stages", "infer,parity"], "--stages: infer reads what export makes"),
        (["run", "simplenet", "--lr", "nan"], "--lr nan: a learning rate is a finite number above 0"),
        (["run", "simplenet", "--lr", "-1"], "--lr -1.0: a learning rate is a finite number above 0"),
        (["run", "simplenet", "--atol", "-1"], "--atol -1.0: a tolerance is a finite number, 0 or more"),
        (["run", "simplenet", "--grad-atol", "inf"], "--grad-atol inf: a tolerance is a finite number"),
        (["parity", "simplenet", "--atol", "nan"], "--atol nan: a tolerance is a finite number"),
        (["train", "simplenet", "--lr", "nan"], "--lr nan: a learning rate is a finite number above 0"),
    ],
)
def test_impossible_options_fail_before_any_work(tmp_path: Path, args: list[str], expected: str) -> None:
    out = tmp_path / "runs"
    with_out = [*args, "--out", str(out)] if args[0] != "parity" else args
    result = bakeoff(*with_out, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()  # no run directory was made


def test_stages_run_in_the_registry_order_once_each() -> None:
    assert check_stages(["infer", "export", "parity", "export"]) == ["parity", "export", "infer"]
    with pytest.raises(UsageError, match=r"add it: --stages export,infer$"):
        check_stages(["infer"])
