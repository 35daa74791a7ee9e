"""The verdict on hand-made records: a winner only where the bootstrap CI excludes 1, and every finding
quoting the run's own numbers. No frameworks are started."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bakeoff.errors import UsageError
from bakeoff.report.verdict import Constraints, recommend
from bakeoff.results.run import load_run
from bakeoff.results.store import RunStore, make_record


def _train(mode: str, framework: str, step: float, rng: np.random.Generator) -> dict:
    times = list(step * rng.lognormal(0, 0.05, 300))
    median = float(np.median(times[1:]))
    return make_record(
        "train",
        mode,
        "ok",
        framework=framework,
        metrics={
            "step_times": times,
            "step_s": {"median": median, "iqr": 0.0},
            "samples_per_s": {"median": 64 / median},
            "first_step_s": 1.0,
        },
    )


def _infer(case: str, framework: str, latency: float, rng: np.random.Generator) -> dict:
    times = list(latency * rng.lognormal(0, 0.05, 400))
    return make_record(
        "infer",
        case,
        "ok",
        framework=framework,
        metrics={
            "device": "cpu",
            "batches": {"1": {"times": times, "stats": {"median": float(np.median(times))}}},
        },
    )


def _run(tmp_path: Path, records: list[dict], options: dict | None = None) -> Path:
    store = RunStore.create(tmp_path, "synthetic")
    info = {"model": "synthetic", "stages": ["train", "infer"], "options": options or {}, "environment": {}}
    store.write_run(info)
    for record in records:
        store.append(record)
    return store.path


def test_equal_speeds_give_no_winner_and_say_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = _run(
        tmp_path, [_train("torch-eager", "torch", 0.002, rng), _train("keras-eager", "keras", 0.002, rng)]
    )
    verdict = recommend(load_run(path), Constraints(goal="research"))
    training = verdict.dimensions[0]
    assert training.winner is None and "no practical difference: within ±5%" in training.finding
    assert verdict.overall is None and verdict.headline.startswith("No winner")


def test_a_real_gap_names_the_winner_with_its_ratio(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    records = [
        _train("torch-eager", "torch", 0.002, rng),
        _train("keras-graph", "keras", 0.004, rng),
        _infer("onnxruntime/torch-onnx", "native", 0.0003, rng),
        _infer("litert/keras-tflite-fp32", "native", 0.0001, rng),
    ]
    run = load_run(_run(tmp_path, records))
    research = recommend(run, Constraints(goal="research"))
    training = research.dimensions[0]
    assert training.winner == "PyTorch"
    assert "torch-eager is 2.0" in training.finding and "faster than keras-graph" in training.finding
    assert research.overall == "PyTorch"
    mobile = recommend(run, Constraints(goal="production", deploy="mobile"))
    inference = next(d for d in mobile.dimensions if d.name == "inference")
    assert inference.winner == "TensorFlow" and "litert/keras-tflite-fp32 is 3.0" in inference.finding
    assert mobile.overall == "TensorFlow"
    assert "not measured" in next(d for d in mobile.dimensions if d.name == "deployment").finding


def test_gpu_asked_on_a_cpu_run_is_said_not_hidden(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    run = load_run(_run(tmp_path, [_train("torch-eager", "torch", 0.002, rng)]))
    verdict = recommend(run, Constraints(hardware="gpu"))
    assert any("no GPU" in note for note in verdict.caveats)
    assert "not measured" in verdict.dimensions[0].finding  # one side only: no comparison invented


def test_bad_constraints_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="deploy must be one of cloud, mobile"):
        Constraints.from_dict({"deploy": "moon"}, "options")
    with pytest.raises(UsageError, match="unknown key"):
        Constraints.from_dict({"budget": "low"}, "options")
    assert json.dumps(Constraints().to_dict())


def test_no_twins_no_verdict_even_when_speeds_differ(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    failed = make_record("parity", "outputs", "failed", message="keras: Keras rejected the model's name")
    path = _run(
        tmp_path,
        [failed, _train("torch-eager", "torch", 0.001, rng), _train("keras-eager", "keras", 0.004, rng)],
    )
    verdict = recommend(load_run(path), Constraints())
    assert verdict.overall is None
    assert verdict.headline.startswith("No verdict: the twins could not be built (keras: Keras rejected")
    assert all(d.winner is None and d.finding.startswith("not decided") for d in verdict.dimensions)


def test_a_run_that_measured_no_weighed_dimension_says_so(tmp_path: Path) -> None:
    pipeline = make_record("pipeline", "tf.data/autotune", "ok", framework="keras")
    verdict = recommend(load_run(_run(tmp_path, [pipeline])), Constraints())
    assert verdict.overall is None
    assert verdict.headline.endswith("this run measured no dimension the verdict weighs.")


def test_a_significant_difference_inside_the_margin_is_no_practical_difference(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    records = [_train("torch-eager", "torch", 0.00200, rng), _train("keras-graph", "keras", 0.00206, rng)]
    run = load_run(_run(tmp_path, records))
    training = recommend(run, Constraints(goal="research")).dimensions[0]
    assert training.winner is None and training.finding.startswith("no practical difference: within ±5%")
    # The same 3% gap with a 1% margin is a win, and the sentence says the margin it cleared.
    strict = recommend(run, Constraints(goal="research"), margin=0.01).dimensions[0]
    assert strict.winner == "PyTorch" and "outside the ±1% margin" in strict.finding
    assert recommend(run, Constraints(), margin=0.01).to_dict()["margin"] == 0.01


def test_cloud_inference_compares_native_paths_and_names_onnx_runtime_an_exporter_finding(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    ops = {"Gemm": 2, "Relu": 1}
    exports = [
        make_record("export", name, "ok", metrics={"verification": {"onnx_ops": ops}})
        for name in ("torch-onnx", "keras-onnx")
    ]
    records = [
        *exports,
        _infer("torchscript/torch-torchscript", "torch", 0.0004, rng),
        _infer("tf-savedmodel/keras-savedmodel", "keras", 0.0002, rng),
        # Faster still, but fp16: a server comparison keeps both sides at fp32 (fairness rule 5).
        _infer("litert/keras-tflite-fp16", "native", 0.00001, rng),
        # ONNX Runtime is fastest of all, and on the PyTorch-exported graph: still not a framework win.
        _infer("onnxruntime/torch-onnx", "native", 0.00005, rng),
        _infer("onnxruntime/keras-onnx", "native", 0.00010, rng),
    ]
    verdict = recommend(load_run(_run(tmp_path, records)), Constraints(deploy="cloud"))
    inference = next(d for d in verdict.dimensions if d.name == "inference")
    assert inference.winner == "TensorFlow" and "tf-savedmodel/keras-savedmodel is 1.9" in inference.finding
    exporter = inference.reasons[-1]
    assert exporter.startswith("exporter comparison (not a framework win)")
    assert re.search(
        r"onnxruntime/torch-onnx is (1\.9|2\.0)\d*x faster than onnxruntime/keras-onnx", exporter
    )
    assert exporter.endswith("the two graphs have the same ops (3 and 3 nodes)")


def test_a_quick_run_shows_but_does_not_decide_training_and_inference(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    records = [
        _train("torch-eager", "torch", 0.002, rng),
        _train("keras-graph", "keras", 0.004, rng),
        _infer("onnxruntime/torch-onnx", "native", 0.0003, rng),
        _infer("litert/keras-tflite-fp32", "native", 0.0001, rng),
    ]
    mobile = Constraints(goal="production", deploy="mobile")
    quick = recommend(load_run(_run(tmp_path, records, {"quick": True})), mobile)
    dims = {d.name: d for d in quick.dimensions}
    for name, measured in (
        ("training", "torch-eager is 2.0"),
        ("inference", "litert/keras-tflite-fp32 is 3.0"),
    ):
        assert dims[name].winner is None and "a --quick run times each contender" in dims[name].finding
        assert any(measured in r for r in dims[name].reasons)  # measured, shown
    shows = "a --quick run shows training speed and inference for mobile but does not decide them"
    assert quick.overall is None and shows in quick.headline
    # Nor does it call a tie: the next quick run may put the pair outside the margin.
    tied = [_train("torch-eager", "torch", 0.003, rng), _train("keras-graph", "keras", 0.003, rng)]
    even = recommend(load_run(_run(tmp_path / "tied", tied, {"quick": True})), mobile)
    (training,) = [d for d in even.dimensions if d.name == "training"]
    assert training.finding.startswith("not decided: a --quick run")
    assert any("no practical difference" in r for r in training.reasons)
    full = recommend(load_run(_run(tmp_path, records, {"quick": False})), mobile)
    assert {d.name: d.winner for d in full.dimensions if d.name in ("training", "inference")} == {
        "training": "PyTorch",
        "inference": "TensorFlow",
    }


def _infer_rounds(case: str, framework: str, medians: list[float]) -> dict:
    """Batch 256, one round per median (40 calls each, within ±1% of it): the rounds of a full run."""
    times = [m * s for m in medians for s in np.linspace(0.99, 1.01, 40)]
    batch = {"times": times, "round_sizes": [40] * len(medians), "stats": {"median": float(np.median(times))}}
    return make_record(
        "infer", case, "ok", framework=framework, metrics={"device": "cpu", "batches": {"256": batch}}
    )


@pytest.mark.parametrize(
    ("torch_scale", "overall", "lean"),
    [
        (1.12, None, "TensorFlow"),  # leans TensorFlow, undecided: it could overturn training's win
        (1.60, "TensorFlow", None),  # decided: it outweighs training
        (0.88, "PyTorch", "PyTorch"),  # leans the leader's way: the lead stands
        (1.00, "PyTorch", None),  # no lean: the lead stands
    ],
)
def test_an_undecided_dimension_that_could_overturn_the_lead_makes_it_too_close_to_call(
    tmp_path: Path, torch_scale: float, overall: str | None, lean: str | None
) -> None:
    rng = np.random.default_rng(7)
    workers = [1.0, 1.3, 0.8, 1.25, 0.9]  # each round's worker 0.8-1.3x: 12% is not decided from five
    records = [
        _train("torch-eager", "torch", 0.002, rng),
        _train("keras-graph", "keras", 0.004, rng),
        _infer_rounds("torchscript/torch-torchscript", "torch", [torch_scale * w for w in workers]),
        _infer_rounds("litert/keras-tflite-fp32", "native", [1.0] * 5),
    ]
    verdict = recommend(load_run(_run(tmp_path, records)), Constraints(goal="production", deploy="cloud"))
    dims = {d.name: d for d in verdict.dimensions}
    assert dims["training"].winner == "PyTorch" and dims["inference"].lean == lean
    assert verdict.overall == overall, verdict.headline
    if overall is None:
        assert verdict.headline.startswith("Too close to call for production, deploying to cloud on cpu:")
        assert "inference for cloud leans TensorFlow but is not decided" in verdict.headline
        assert verdict.to_dict()["dimensions"][1]["lean"] == "TensorFlow"
