"""The scale-out dimension: only a goal that asks for it weighs it, and it names the faster side of the
multi-worker cases that passed the gate. Hand-made distributed records; no frameworks are started."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bakeoff.report.verdict import Constraints, recommend
from bakeoff.results.run import load_run
from bakeoff.results.store import RunStore, make_record


def _dist(case: str, api: str, workers: int, step: float, matches: bool = True) -> dict:
    times = list(step * np.random.default_rng(workers).lognormal(0, 0.05, 200))
    median = float(np.median(times[1:]))
    return make_record(
        "distributed",
        case,
        "ok",
        framework="torch" if api == "torch.distributed" else "keras",
        metrics={
            "step_times": times,
            "step_s": {"median": median},
            "samples_per_s": {"median": 64 / median},
            "matches_single": matches,
            "lines_changed": 4,
        },
        settings={"api": api, "workers": workers, "scaling": "strong"},
    )


def _run(tmp_path: Path, records: list[dict]) -> Path:
    store = RunStore.create(tmp_path, "synthetic")
    store.write_run({"model": "synthetic", "stages": ["distributed"], "options": {}, "environment": {}})
    for record in records:
        store.append(record)
    return store.path


def test_scale_out_is_weighed_only_when_the_goal_asks_and_names_the_faster_side(tmp_path: Path) -> None:
    path = _run(
        tmp_path,
        [
            _dist("torchrun/workers=1", "torch.distributed", 1, 0.010),
            _dist("torchrun/workers=2", "torch.distributed", 2, 0.006),
            _dist("mwms/workers=2", "tf.distribute", 2, 0.012),
        ],
    )
    run = load_run(path)
    assert "scale-out" not in [d.name for d in recommend(run, Constraints(goal="production")).dimensions]
    dim = next(d for d in recommend(run, Constraints(goal="scale-out")).dimensions if d.name == "scale-out")
    assert dim.winner == "PyTorch" and dim.weight == 3
    assert "torchrun/workers=2" in dim.finding


def test_a_case_that_failed_the_gate_is_not_a_contender(tmp_path: Path) -> None:
    path = _run(
        tmp_path,
        [
            _dist("torchrun/workers=2", "torch.distributed", 2, 0.006, matches=False),
            _dist("mwms/workers=2", "tf.distribute", 2, 0.012),
        ],
    )
    dim = next(
        d
        for d in recommend(load_run(path), Constraints(goal="scale-out")).dimensions
        if d.name == "scale-out"
    )
    assert dim.winner is None and dim.finding.startswith("not measured")
