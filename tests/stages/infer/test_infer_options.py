"""Which inference rounds start fresh worker processes, and what the run records say about it."""

from __future__ import annotations

from typing import Any

from bakeoff.stages.infer.inference import InferOptions
from bakeoff.stages.infer.stage import options_for, options_of


def test_the_default_restarts_every_round_after_the_first_and_quick_never() -> None:
    default = options_of({"infer": options_for(None, [1, 256], quick=False)})
    assert [i for i in range(default.rounds) if default.fresh(i)] == [1, 2, 3, 4]
    assert "fresh workers each round after the first" in default.settings(2, False)["rounds"]
    quick = options_of({"infer": options_for(None, [1, 256], quick=True)})
    assert [i for i in range(quick.rounds) if quick.fresh(i)] == []  # the export stage's workers, kept
    assert "the same workers in every round" in quick.settings(2, False)["rounds"]
    other = InferOptions(restart_every=2)
    assert [i for i in range(5) if other.fresh(i)] == [2, 4]
    assert other.restarts().startswith("fresh workers at rounds 3, 5 (round 1 in the workers")


def test_a_run_recorded_before_restart_every_reads_back() -> None:
    """run.json of an earlier run has restart_workers and no restart_every: it restarted every round,
    and resuming it still does."""
    old = options_of({"infer": {"runtimes": ["onnxruntime"], "batch_sizes": [1], "restart_workers": True}})
    assert old.restart_every == 1 and [i for i in range(5) if old.fresh(i)] == [1, 2, 3, 4]


def test_a_round_takes_one_case_of_each_worker_in_turn() -> None:
    from bakeoff.stages.infer.inference import turns

    cases = ["torch-eager/a", "torchscript/b", "tf-savedmodel/c", "onnxruntime/d", "litert/e"]
    assert turns(cases, forward=True) == [
        "torch-eager/a",
        "tf-savedmodel/c",
        "onnxruntime/d",
        "torchscript/b",
        "litert/e",
    ]
    assert turns(cases, forward=False) == [
        "onnxruntime/d",
        "tf-savedmodel/c",
        "torch-eager/a",
        "litert/e",
        "torchscript/b",
    ]


def _record(case: str, medians: list[float], gate: str = "pass") -> dict[str, Any]:
    """An ok inference record at batch 256 whose rounds have these medians (20 calls each, +-1%)."""
    import numpy as np

    spread = np.linspace(0.99, 1.01, 20)
    times = [float(m * s) for m in medians for s in spread]
    batch = {"times": times, "round_sizes": [20] * len(medians), "stats": {"median": float(np.median(times))}}
    metrics = {"device": "cpu", "gate": gate, "batches": {"256": batch}}
    return {"stage": "infer", "case": case, "status": "ok", "metrics": metrics}


def test_undecided_names_the_pairs_a_verdict_compares_whose_ci_straddles_the_margin() -> None:
    from bakeoff.stages.infer.inference import undecided

    torch_, lite = "torchscript/torch-torchscript", "litert/keras-tflite-fp32"
    spread = [1.0, 1.3, 0.8, 1.25, 0.9]  # each round's worker 0.8-1.3x: a 10% difference is not decided
    assert undecided([_record(torch_, [1.1 * s for s in spread]), _record(lite, [1.0] * 5)], 0.05) == [
        torch_,
        lite,
    ]
    assert undecided([_record(torch_, [2.0] * 5), _record(lite, [1.0] * 5)], 0.05) == []  # a clear win
    assert undecided([_record(torch_, [1.0] * 5), _record(lite, [1.01] * 5)], 0.05) == []  # no difference
    # A case the accuracy gate failed is never a contender; one side alone compares nothing.
    assert undecided([_record(torch_, spread), _record(lite, [1.0] * 5, gate="fail")], 0.05) == []
