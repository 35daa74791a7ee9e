"""The distributed section of report.html and summary.md, from hand-made distributed records."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bakeoff.report.digest import digest
from bakeoff.report.html_sections import distributed
from bakeoff.results.run import load_run
from bakeoff.results.store import RunStore, make_record
from bakeoff.stages.distributed.scaling import summary_record


def _case(case: str, launcher: str, api: str, workers: int, step: float, framework: str) -> dict:
    times = [step] * 20
    return make_record(
        "distributed",
        case,
        "ok",
        framework=framework,
        metrics={
            "step_times": times,
            "step_s": {"median": step},
            "samples_per_s": {"median": 64 / step},
            "step_losses": list(np.linspace(2.3, 1.9, 20)),
            "launch_to_first_step_s": 9.0,
            "allreduce_s": 1e-3,
            "rss_peak_bytes": 2**30,
            "matches_single": True,
            "vs_single": {"max_rel_loss_diff": 2e-7} if workers > 1 else None,
            "lines_changed": 4,
        },
        settings={
            "api": api,
            "launcher": launcher,
            "workers": workers,
            "scaling": "strong",
            "global_batch": 64,
            "layout": f"{workers} worker(s) x 1 thread(s) on 2 cores",
            "baseline": f"{'torchrun' if framework == 'torch' else 'mirrored'}/workers=1",
        },
    )


def test_the_section_shows_the_table_the_gate_and_that_distributing_did_not_pay(tmp_path: Path) -> None:
    records = [
        _case("torchrun/workers=1", "torchrun", "torch.distributed", 1, 0.010, "torch"),
        _case("mirrored/workers=1", "mirrored", "tf.distribute", 1, 0.020, "keras"),
        _case("torchrun/workers=2", "torchrun", "torch.distributed", 2, 0.025, "torch"),
        _case("mwms/workers=2", "mwms", "tf.distribute", 2, 0.050, "keras"),
    ]
    summary = summary_record(records, cores=2)
    assert summary is not None and summary["status"] == "ok"
    store = RunStore.create(tmp_path, "synthetic")
    store.write_run({"model": "synthetic", "stages": ["distributed"], "options": {}, "environment": {}})
    for record in [*records, summary]:
        store.append(record)
    d = digest(load_run(store.path))
    html = distributed(d)
    assert "Distributed training" in html and "<svg" in html
    assert "distributing cannot pay on this 2-core machine" in html
    assert "torchrun/workers=2 vs mwms/workers=2" in html and "max rel. loss diff" in html
    row = next(r for r in d["distributed"]["table"] if r["case"] == "torchrun/workers=2")
    assert row["speedup"] == 0.4 and row["efficiency"] == 0.2
