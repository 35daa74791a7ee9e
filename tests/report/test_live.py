"""The live display's estimate of what is left: from the last run of the same model and depth, rescaled
by how this run's finished stages compare with it."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from bakeoff.report.live import DEFAULT_SECONDS, RunProgress, estimates


def _finished(root: Path, name: str, model: str, quick: bool, seconds: dict[str, float]) -> None:
    (root / name).mkdir(parents=True)
    info = {"model": model, "options": {"quick": quick}, "stage_seconds": seconds}
    (root / name / "run.json").write_text(json.dumps(info))


def test_estimates_come_from_the_newest_run_of_the_same_model_and_depth(tmp_path: Path) -> None:
    assert estimates(tmp_path / "none", "simplenet", True) == DEFAULT_SECONDS[True]
    _finished(tmp_path, "20260101-000000-simplenet", "simplenet", True, {"parity": 1.0})
    _finished(tmp_path, "20260102-000000-simplenet", "simplenet", True, {"parity": 2.0})
    _finished(tmp_path, "20260103-000000-simplenet", "simplenet", False, {"parity": 9.0})
    _finished(tmp_path, "20260104-000000-lenet", "lenet", True, {"parity": 7.0})
    found = estimates(tmp_path, "simplenet", True)
    assert found["parity"] == 2.0 and found["train"] == DEFAULT_SECONDS[True]["train"]


def test_seconds_left_shrink_and_rescale_with_finished_stages() -> None:
    live = RunProgress(Console(file=io.StringIO()), ["a", "b", "c"], {"a": 10.0, "b": 20.0, "c": 30.0})
    assert live.seconds_left() == 60.0
    live.stage("a")
    assert 49.0 < (live.seconds_left() or 0) <= 60.0
    live.started["a"] -= 20.0  # stage a took twice its estimate: the rest is expected twice as long
    live.stage("b")
    left = live.seconds_left() or 0
    assert 95.0 < left < 100.5


def test_a_stage_not_in_the_plan_is_added_not_a_crash() -> None:
    live = RunProgress(Console(file=io.StringIO()), [], {"train": 5.0})
    live.stage("train")
    assert live.stages == ["train"] and (live.seconds_left() or 0) <= 5.0
