"""Which inference rounds start fresh worker processes, and what the run records say about it."""

from __future__ import annotations

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
