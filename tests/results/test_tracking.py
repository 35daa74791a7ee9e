"""`--track`: a run's numbers read back through MLflow's and TensorBoard's own readers equal its records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bakeoff.errors import UsageError
from bakeoff.results import tracking
from bakeoff.results.run import Run, load_run
from bakeoff.results.store import RunStore, make_record
from tests.conftest import bakeoff

INFO = {
    "bakeoff": "0.1.0",
    "model": "tiny",
    "stages": ["parity", "train", "pipeline", "export", "infer"],
    "options": {"threads": 2, "train": {"modes": ["torch-eager"], "epochs": 2, "data": None}},
    "environment": {"hostname": "box", "cpu": "Test CPU", "gpus": [], "libraries": {"torch": "2.13.0"}},
}


def _synthetic(root: Path) -> Path:
    """A tiny run directory in the record format: one case per stage, one failed case."""
    store = RunStore.create(root, "tiny")
    store.write_run(INFO)
    stats = {"median": 0.002, "iqr": 0.0001}
    train = {
        "samples_per_s": {"median": 32000.0},
        "step_s": stats,
        "val_acc": 0.8,
        "val_acc_per_epoch": [0.7, 0.8],
        "step_losses": [2.3, 1.9, 1.5],
        "utilization": 0.25,
    }
    infer = {
        "batches": {
            "1": {"stats": {"median": 2e-5}},
            "8": {"stats": {"median": 4e-5}, "samples_per_s": 1.9e5},
        }
    }
    export = {"size_bytes": 4096, "verification": {"accuracy": 0.8, "max_abs_diff": 1e-6}, "gate": "pass"}
    for record in [
        make_record("parity", "outputs", "ok", metrics={"max_abs": 1e-6}),
        make_record("train", "torch-eager", "ok", framework="torch", metrics=train),
        make_record("train", "keras-xla", "failed", framework="keras", message="boom"),
        make_record(
            "pipeline", "dataloader/workers=2", "ok", framework="torch", metrics={"samples_per_s": 4700.0}
        ),
        make_record("export", "torch-onnx", "ok", framework="torch", metrics=export),
        make_record("infer", "onnxruntime/torch-onnx", "ok", framework="native", metrics=infer),
    ]:
        store.append(record)
    (store.path / "artifacts" / "torch-onnx").mkdir()
    (store.path / "artifacts" / "torch-onnx" / "model.onnx").write_bytes(b"onnx")
    (store.path / "summary.md").write_text("# tiny\n")
    return store.path


def _report_files(run_dir: Path) -> list[Path]:
    return [run_dir / name for name in ("report.html", "summary.md", "results.json")]


def _mlflow_run(uri: str) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bakeoff")
    (found,) = client.search_runs([experiment.experiment_id])
    return client, found


def _scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture
def no_tracking_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MLFLOW_TRACKING_URI, and an empty working directory to show nothing lands there."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


# --- choosing a tracker -------------------------------------------------------------------------------


def test_an_unknown_tracker_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=r"--track: unknown tracker\(s\) wandb; available: mlflow, tensorboard"
    ):
        tracking.check_kinds(["mlflow", "wandb"])
    with pytest.raises(UsageError, match="wandb"):
        tracking.track("wandb", Run(tmp_path, {}, []))
    assert tracking.check_kinds([]) == []
    assert tracking.check_kinds(["tensorboard", "mlflow", "tensorboard"]) == ["tensorboard", "mlflow"]


def test_a_missing_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(
        tracking.importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(
        UsageError, match=r"--track mlflow needs mlflow-skinny .*pip install 'bakeoff\[track\]'"
    ):
        tracking.check_kinds(["mlflow"])
    assert tracking.check_kinds(["tensorboard"]) == ["tensorboard"]


def test_mlflow_keys_keep_only_characters_mlflow_allows() -> None:
    assert (
        tracking.mlflow_key("infer", "onnxruntime/torch-onnx", "p50_ms")
        == "infer/onnxruntime/torch-onnx/p50_ms"
    )
    assert tracking.mlflow_key("pipeline", "dataloader/workers=2") == "pipeline/dataloader/workers_2"
    assert tracking.mlflow_key("pipeline", "tf.data/autotune+cache") == "pipeline/tf.data/autotune_cache"
    assert tracking.mlflow_key("a", "/../b//c/.", "d") == "a/_/b/c/d"


# --- a synthetic run: fast ----------------------------------------------------------------------------


def test_a_synthetic_run_reads_back_from_mlflow_and_tensorboard(
    tmp_path: Path, no_tracking_env: Path
) -> None:
    run_dir = _synthetic(tmp_path / "runs")
    run = load_run(run_dir)

    line = tracking.track("mlflow", run, _report_files(run_dir))
    uri = tracking.local_tracking_uri(run_dir)
    assert line.startswith("mlflow: run ") and uri in line
    client, found = _mlflow_run(uri)
    m, run_id = found.data.metrics, found.info.run_id
    assert m["train/torch-eager/samples_per_s"] == 32000.0
    assert m["train/torch-eager/step_ms"] == pytest.approx(2.0)
    assert m["train/torch-eager/val_acc"] == 0.8 and m["train/torch-eager/utilization"] == 0.25
    losses = client.get_metric_history(run_id, "train/torch-eager/loss")
    assert sorted((p.step, p.value) for p in losses) == [(0, 2.3), (1, 1.9), (2, 1.5)]
    assert m["pipeline/dataloader/workers_2/samples_per_s"] == 4700.0
    assert m["export/torch-onnx/size_bytes"] == 4096 and m["export/torch-onnx/max_abs_diff"] == 1e-6
    assert m["infer/onnxruntime/torch-onnx/batch_1/p50_ms"] == pytest.approx(0.02)
    assert m["infer/onnxruntime/torch-onnx/batch_1/samples_per_s"] == pytest.approx(5e4)
    assert m["infer/onnxruntime/torch-onnx/batch_8/samples_per_s"] == 1.9e5
    assert m["parity/outputs/max_abs_diff"] == 1e-6
    assert not any("keras-xla" in k for k in m)  # a failed case has no numbers
    assert found.data.params["train.epochs"] == "2" and found.data.params["train.modes"] == "torch-eager"
    tags = found.data.tags
    assert (tags["model"], tags["machine"], tags["bakeoff"]) == ("tiny", "box / Test CPU", "0.1.0")
    assert (tags["mlflow.runName"], tags["failed_cases"]) == (run_dir.name, "1")
    assert {a.path for a in client.list_artifacts(run_id)} == {
        "artifacts",
        "run.json",
        "records.jsonl",
        "summary.md",
    }
    assert [a.path for a in client.list_artifacts(run_id, "artifacts/torch-onnx")] == [
        "artifacts/torch-onnx/model.onnx"
    ]

    # Tracking the same directory again replaces its MLflow run instead of doubling its curves.
    tracking.track("mlflow", run, [])
    client, again = _mlflow_run(uri)
    assert again.info.run_id != run_id
    assert len(client.get_metric_history(again.info.run_id, "train/torch-eager/loss")) == 3

    line = tracking.track("tensorboard", run, [])
    assert str(run_dir / "tensorboard") in line
    tracking.track("tensorboard", run, [])  # again: still one point per step
    train = _scalars(run_dir / "tensorboard" / "train" / "torch-eager")
    assert train["train/loss"] == [(0, pytest.approx(2.3)), (1, pytest.approx(1.9)), (2, pytest.approx(1.5))]
    assert train["train/val_acc"] == [(1, pytest.approx(0.7)), (2, pytest.approx(0.8))]
    stages = _scalars(run_dir / "tensorboard" / "stages")
    assert stages["infer/samples_per_s/onnxruntime/torch-onnx"] == [(1, pytest.approx(5e4)), (8, 1.9e5)]
    assert stages["pipeline/samples_per_s/dataloader/workers=2"] == [(0, 4700.0)]

    assert list(no_tracking_env.iterdir()) == []  # no ./mlruns, nothing else in the working directory


def test_mlflow_honours_mlflow_tracking_uri(
    tmp_path: Path, no_tracking_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _synthetic(tmp_path / "runs")
    store = tmp_path / "elsewhere"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    assert uri in tracking.track("mlflow", load_run(run_dir), [])
    client, found = _mlflow_run(uri)
    assert found.data.metrics["train/torch-eager/samples_per_s"] == 32000.0
    assert {a.path for a in client.list_artifacts(found.info.run_id)} >= {"artifacts", "run.json"}
    assert not (run_dir / "mlflow").exists()
    assert (store / "mlartifacts").is_dir()  # beside the database, not under the working directory
    assert list(no_tracking_env.iterdir()) == []


def test_tracking_imports_neither_framework(tmp_path: Path) -> None:
    """The CLI process stays free of torch and TensorFlow (seconds to import) and imports mlflow lazily."""
    run_dir = _synthetic(tmp_path / "runs")
    code = f"""
import sys
from pathlib import Path
from bakeoff.results import tracking
from bakeoff.results.run import load_run
assert "mlflow" not in sys.modules, "mlflow imported eagerly"
run = load_run(Path({str(run_dir)!r}))
tracking.track("tensorboard", run, [])
tracking.track("mlflow", run, [])
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "torch", "keras", "jax"}})
assert not loaded, loaded
"""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "INFO" not in result.stderr, result.stderr[-3000:]  # MLflow's start-up chatter is silenced
    assert not (tmp_path / "mlruns").exists()


# --- a real quick run ---------------------------------------------------------------------------------


def _copy(quick_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(quick_run, tmp_path / quick_run.name))


def _train_records(run: Run) -> dict[str, dict[str, Any]]:
    return {
        r["case"]: r["metrics"]
        for r in run.stage("train")
        if r["status"] == "ok" and "step_losses" in r["metrics"]
    }


@pytest.mark.slow
def test_a_real_quick_run_in_mlflow_equals_its_records(
    quick_run: Path, tmp_path: Path, no_tracking_env: Path
) -> None:
    run_dir = _copy(quick_run, tmp_path)
    if not (run_dir / "summary.md").exists():
        (run_dir / "summary.md").write_text("# summary\n")
    run = load_run(run_dir)
    tracking.track("mlflow", run, _report_files(run_dir))

    client, found = _mlflow_run(tracking.local_tracking_uri(run_dir))
    m, run_id = found.data.metrics, found.info.run_id
    trained = _train_records(run)
    assert {"torch-eager", "keras-eager"} <= set(trained)
    for mode, metrics in trained.items():
        assert m[f"train/{mode}/samples_per_s"] == metrics["samples_per_s"]["median"]
        assert m[f"train/{mode}/val_acc"] == metrics["val_acc"]
        history = client.get_metric_history(run_id, f"train/{mode}/loss")
        assert sorted((p.step, p.value) for p in history) == list(enumerate(metrics["step_losses"]))
    eager = run.case("infer", "onnxruntime/torch-onnx")
    assert eager is not None
    for batch, entry in eager["metrics"]["batches"].items():
        key = f"infer/onnxruntime/torch-onnx/batch_{batch}"
        assert m[f"{key}/p50_ms"] == pytest.approx(1000 * entry["stats"]["median"], rel=1e-12)
        assert m[f"{key}/samples_per_s"] == entry["samples_per_s"]
    onnx = run.case("export", "torch-onnx")
    assert onnx is not None and m["export/torch-onnx/size_bytes"] == onnx["metrics"]["size_bytes"]
    workers = run.case("pipeline", "dataloader/workers=2")
    assert workers is not None
    assert m["pipeline/dataloader/workers_2/samples_per_s"] == workers["metrics"]["samples_per_s"]
    assert found.data.params["train.epochs"] == str(run.info["options"]["train"]["epochs"])

    logged = {a.path for a in client.list_artifacts(run_id)}
    assert {"artifacts", "run.json", "records.jsonl", "summary.md"} <= logged
    assert {p.name for p in (run_dir / "report.html", run_dir / "results.json") if p.exists()} <= logged
    shipped = {Path(a.path).name for a in client.list_artifacts(run_id, "artifacts")}
    assert shipped == {p.name for p in (run_dir / "artifacts").iterdir()}
    experiment = client.get_experiment_by_name("bakeoff")
    assert (
        Path(experiment.artifact_location.removeprefix("file://"))
        == run_dir.resolve() / "mlflow" / "artifacts"
    )
    assert list(no_tracking_env.iterdir()) == []


@pytest.mark.slow
def test_a_real_quick_run_in_tensorboard_equals_its_records(quick_run: Path, tmp_path: Path) -> None:
    run_dir = _copy(quick_run, tmp_path)
    run = load_run(run_dir)
    tracking.track("tensorboard", run, [])

    root = run_dir / "tensorboard"
    trained = _train_records(run)
    assert {p.name for p in (root / "train").iterdir()} == set(trained)
    for mode, metrics in trained.items():
        scalars = _scalars(root / "train" / mode)
        # Event files hold float32: equal to the record to float32 precision.
        assert scalars["train/loss"] == [
            (i, pytest.approx(v, rel=1e-6)) for i, v in enumerate(metrics["step_losses"])
        ]
        assert scalars["train/samples_per_s"] == [
            (0, pytest.approx(metrics["samples_per_s"]["median"], rel=1e-6))
        ]
        epochs = metrics["val_acc_per_epoch"]
        assert scalars["train/val_acc"] == [(i, pytest.approx(a, rel=1e-6)) for i, a in enumerate(epochs, 1)]
    stages = _scalars(root / "stages")
    eager = run.case("infer", "torch-eager/torch-twin")
    assert eager is not None
    expected = sorted(
        (int(b), pytest.approx(e["samples_per_s"], rel=1e-6)) for b, e in eager["metrics"]["batches"].items()
    )
    assert stages["infer/samples_per_s/torch-eager/torch-twin"] == expected
    assert json.loads((run_dir / "run.json").read_text())["model"] == "simplenet"


@pytest.mark.slow
def test_run_track_flag_logs_to_both_after_the_report(tmp_path: Path) -> None:
    result = bakeoff(
        "run",
        "simplenet",
        "--stages",
        "parity",
        "--track",
        "tensorboard,mlflow",
        "--out",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert "tracked: tensorboard:" in result.stdout and "tracked: mlflow:" in result.stdout
    assert (run / "mlflow" / "mlflow.db").is_file() and any(
        (run / "tensorboard").rglob("events.out.tfevents.*")
    )
    assert not (tmp_path / "mlruns").exists()
    bad = bakeoff("run", "--track", "wandb", "--out", str(tmp_path))
    assert bad.returncode == 2 and "wandb" in bad.stderr and len(list(tmp_path.iterdir())) == 1
