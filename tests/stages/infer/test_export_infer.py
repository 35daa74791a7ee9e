"""Export and inference end to end through the real CLI and workers, on a tiny conv net: every
artifact made and verified, every CPU runtime timed, a corrupted artifact caught, layouts written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bakeoff.measure.env import gpus
from bakeoff.runtimes import RUNTIMES
from bakeoff.stages.export.artifacts import ARTIFACTS, DEFAULT_ARTIFACTS
from tests.conftest import FIXTURES, bakeoff

pytestmark = pytest.mark.slow
TINY = str(FIXTURES / "tiny_conv.yaml")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("runs")
    result = bakeoff(
        "infer", TINY, "--quick", "--batch-sizes", "1,4", "--out", str(out), "--json", timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def _by_case(run: dict[str, Any], stage: str) -> dict[str, dict[str, Any]]:
    return {r["case"]: r for r in run["records"] if r["stage"] == stage}


def test_every_artifact_exports_and_verifies(run: dict[str, Any]) -> None:
    exports = _by_case(run, "export")
    assert exports["fit"]["metrics"]["val_acc"] > 0.5  # one epoch of real digits
    for name in DEFAULT_ARTIFACTS:
        artifact, record = ARTIFACTS[name], exports[name]
        assert record["status"] == "ok", (name, record["message"])
        m = record["metrics"]
        v = m["verification"]
        assert m["size_bytes"] > 0 and m["export_seconds"] >= 0 and v["samples"] == 1000
        assert (Path(run["run_dir"]) / m["path"]).exists()
        assert m["gate"] in ("pass", "fail")
        if artifact.fp32:
            assert v["max_abs_diff"] < 1e-4 and v["top1_agreement"] == 1.0 and m["gate"] == "pass", name
        else:  # quantized: close to, but not the same as, its source
            assert 0 < v["max_abs_diff"] < 1.0 and v["top1_agreement"] > 0.9, name
    assert exports["torch-onnx"]["metrics"]["opset"] == 18


def test_every_cpu_runtime_runs_every_artifact_of_its_format(run: dict[str, Any]) -> None:
    infers = _by_case(run, "infer")
    expected = {
        f"{r.name}/{a}"
        for r in RUNTIMES.values()
        if not r.gpu
        for a in DEFAULT_ARTIFACTS
        if ARTIFACTS[a].format in r.formats
    }
    assert expected == set(infers) - {"summary"}
    exports = _by_case(run, "export")
    for case in expected:
        record = infers[case]
        assert record["status"] == "ok", (case, record["message"])
        m = record["metrics"]
        assert set(m["batches"]) == {"1", "4"}
        for batch in m["batches"].values():
            assert batch["stats"]["median"] > 0 and batch["samples_per_s"] > 0 and len(batch["times"]) >= 3
        assert m["load_s"] > 0 and m["first_inference_s"] > 0
        assert m["resources"]["rss_peak_bytes"] > 20 * 2**20
        # The same artifact on the same data gives the accuracy its verification found.
        artifact = m["artifact"]
        assert m["quality"]["accuracy"] == pytest.approx(
            exports[artifact]["metrics"]["verification"]["accuracy"], abs=2e-3
        )
    settings = infers["onnxruntime/torch-onnx"]["settings"]
    assert settings["host_device_copies"].startswith("included for every runtime")
    assert settings["threads"] >= 1
    summary = infers["summary"]["metrics"]["by_device"]["cpu"]
    assert set(summary) == {"1", "4"} and all(info["fastest"] in expected for info in summary.values())


def test_a_worker_that_dies_mid_round_takes_only_its_case(
    run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The torch worker is killed (SIGKILL, from here) as TorchScript's first timing block is asked for:
    that case fails, saying how; torch eager, loaded before it, is loaded again in a fresh worker and
    timed; ONNX Runtime's case, in its own worker, never notices; no worker is left behind."""
    import os
    import signal

    import psutil

    from bakeoff.measure.conduct import Conducted
    from bakeoff.measure.isolation import POOL
    from bakeoff.spec.load import resolve
    from bakeoff.stages.export.exporter import job_request
    from bakeoff.stages.infer.inference import InferOptions, run_inference

    victim = "torchscript/torch-torchscript"
    cases = ["torch-eager/torch-twin", victim, "onnxruntime/torch-onnx"]
    real_ask, killed = Conducted.ask, []

    def ask(self: Conducted, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        if command.get("case") == victim and command["op"] == "measure" and not killed:
            killed.append(self.pid)
            os.kill(self.pid, signal.SIGKILL)
        return real_ask(self, command, timeout)

    monkeypatch.setattr(Conducted, "ask", ask)
    options = InferOptions(batch_sizes=(1, 4), rounds=2, min_time=0.005, max_time=0.01, max_runs=20)
    request = job_request(resolve(TINY), Path(run["run_dir"]) / "artifacts", 1)
    records: list[dict[str, Any]] = []
    POOL.close()
    try:
        run_inference(request, cases, options, {}, tmp_path, records.append)
        workers = [p.pid for p in psutil.Process().children(recursive=True) if p.pid != killed[0]]
    finally:
        POOL.close()
    assert not set(workers) & {p.pid for p in psutil.Process().children(recursive=True)}
    got = {r["case"]: r for r in records}
    assert set(got) == set(cases)
    failed = got[victim]
    assert failed["status"] == "failed", failed["message"]
    assert "batch 1: torch worker died from signal 9" in failed["message"], failed["message"]
    assert failed["message"].endswith("(round 1 of 2)"), failed["message"]
    for case in ("torch-eager/torch-twin", "onnxruntime/torch-onnx"):
        record = got[case]
        assert record["status"] == "ok", (case, record["message"])
        for batch in record["metrics"]["batches"].values():
            assert len(batch["round_sizes"]) == 2 and [len(b) for b in batch["block_sizes"]] == [2, 2]
    # Torch eager's first load is the one reported; the reload in the fresh worker is not a cold start.
    assert len(got["torch-eager/torch-twin"]["metrics"]["cold_starts"]) == 2


def test_a_conducted_job_answers_a_failing_command_and_loses_a_worker_past_its_time(
    run: dict[str, Any], tmp_path: Path
) -> None:
    """measure.conduct on real workers: a command that raises is answered with its error and the job
    goes on; a command past its time kills that worker (and only it)."""
    import psutil

    from bakeoff.measure.conduct import Conductor, Lost
    from bakeoff.measure.isolation import POOL
    from bakeoff.spec.load import resolve
    from bakeoff.stages.export.exporter import job_request

    request = {
        **job_request(resolve(TINY), Path(run["run_dir"]) / "artifacts", 1),
        "job": "infer",
        "round": 1,
    }
    POOL.close()
    try:
        with Conductor(request, tmp_path) as conductor:
            assert conductor.start(["native", "torch"]) == {}
            bad = conductor.ask("native", {"op": "load", "case": "onnxruntime/no-such-artifact"}, 60, key="a")
            assert not bad["ok"] and bad["error"].startswith("KeyError"), bad
            good = conductor.ask("native", {"op": "load", "case": "onnxruntime/torch-onnx"}, 60, key="b")
            assert good["ok"] and good["meta"]["load_s"] > 0, good
            pid = conductor.jobs["torch"].pid
            with pytest.raises(Lost, match="timed out"):  # torch.compile's first call takes seconds
                conductor.ask("torch", {"op": "load", "case": "torch-compile/torch-twin"}, 0.05, key="c")
            assert "torch" not in conductor.jobs and not psutil.pid_exists(pid)
            block = {"op": "measure", "case": "onnxruntime/torch-onnx", "size": 1}
            timed = conductor.ask("native", {**block, "min_time": 0.001, "max_time": 0.01, "max_runs": 5}, 60)
            assert timed["ok"] and 1 <= len(timed["meta"]["times"]) <= 5, timed
    finally:
        POOL.close()


def test_a_corrupted_artifact_fails_verification_loudly(run: dict[str, Any], tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    from bakeoff.spec.load import resolve
    from bakeoff.stages.export.exporter import Exporter, ExportOptions

    root = tmp_path / "artifacts"
    shutil.copytree(Path(run["run_dir"]) / "artifacts", root)
    path = root / "torch-onnx" / "model.onnx"
    model = onnx.load(str(path))
    # The largest weight tensor, scaled: the file still loads, it just answers wrong.
    weight = max(model.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(model, str(path))
    records: list[dict[str, Any]] = []
    exporter = Exporter(resolve(TINY), ExportOptions(threads=1), root, records.append, lambda _: None)
    exporter.exported["torch-onnx"] = {"path": str(path), "size_bytes": 1, "export_seconds": 0.0}
    exporter.verify()
    (record,) = records
    assert record["status"] == "failed" and record["message"].startswith("WRONG OUTPUTS: max abs diff")


def test_infer_table_and_gate_are_printed(tmp_path: Path) -> None:
    args = ["--artifacts", "keras-tflite-int8", "--runtimes", "litert,torch-eager", "--batch-sizes", "1"]
    result = bakeoff("infer", TINY, "--quick", *args, "--out", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    for text in (
        "inference latency ms",
        "litert/keras-tflite-int8",
        "torch-eager/torch-twin",
        "Δ vs fp32",
        "gate",
        "int8 (full)",
    ):
        assert text in result.stdout, text
    # A quick infer run says so, as `run --quick` does: the verdict and the claims show, not decide, speed.
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run / "run.json").read_text())["options"]["quick"] is True
    verdict = json.loads((run / "results.json").read_text())["verdict"]
    (inference,) = [d for d in verdict["dimensions"] if d["name"] == "inference"]
    assert inference["winner"] is None, inference  # measured (or straddling), never decided


@pytest.mark.parametrize(
    ("target", "expect"),
    [
        ("triton", ["tiny/config.pbtxt", "tiny/1/model.onnx"]),
        ("tfserving", ["tiny/1/saved_model.pb", "tiny/1/variables"]),
        ("torchserve", ["tiny.mar"]),
        ("tflite", ["tiny-fp32.tflite", "tiny-int8.tflite"]),
    ],
)
def test_export_target_writes_the_server_layout(tmp_path: Path, target: str, expect: list[str]) -> None:
    dest = tmp_path / "deploy"
    args = ["--to", str(dest), "--name", "tiny", "--epochs", "1", "--out", str(tmp_path / "runs")]
    result = bakeoff("export", TINY, "--target", target, *args, timeout=600)
    assert result.returncode == 0, result.stderr
    for rel in expect:
        assert (dest / rel).exists(), rel
    assert "wrote" in result.stdout
    if target == "triton":
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2

        config = text_format.Parse((dest / "tiny/config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert config.platform == "onnxruntime_onnx" and list(config.input[0].dims) == [1, 28, 28]


def test_export_refuses_a_target_the_source_cannot_make(tmp_path: Path) -> None:
    result = bakeoff("export", TINY, "--target", "torchserve", "--from", "keras", "--to", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --target torchserve is made from a torch model, not keras (--from)"
    ]


def test_bad_infer_options_are_one_line_usage_errors(tmp_path: Path) -> None:
    for args, text in [
        (["--runtimes", "onnxruntime,tensorrt"], "unknown runtime(s) tensorrt"),
        (["--artifacts", "torch-tflite"], "unknown artifact(s) torch-tflite"),
        (["--batch-sizes", "1,x"], "--batch-sizes '1,x'"),
        (["--batch-sizes", "0"], "--batch-sizes"),
    ]:
        result = bakeoff("infer", TINY, *args, "--out", str(tmp_path))
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and text in result.stderr, result.stderr
    assert not list(tmp_path.iterdir())  # nothing was made for a mistake


def test_a_failing_exporter_is_recorded_and_the_rest_go_on(tmp_path: Path) -> None:
    args = [
        "--artifacts",
        "keras-onnx-int8-dynamic,torch-onnx",
        "--runtimes",
        "onnxruntime",
        "--batch-sizes",
        "1",
    ]
    result = bakeoff(
        "infer", str(FIXTURES / "grouped_conv.yaml"), "--quick", *args, "--out", str(tmp_path), "--json"
    )
    assert result.returncode == 1, result.stderr  # a check failed; the run still finished
    data = json.loads(result.stdout)
    exports, infers = _by_case(data, "export"), _by_case(data, "infer")
    assert exports["keras-onnx"]["status"] == "failed"
    message = exports["keras-onnx"]["message"]
    assert message.startswith("export failed: RuntimeError: tf2onnx wrote invalid ONNX: "), message
    assert "could not inline the TensorFlow function call" in message
    assert exports["keras-onnx-int8-dynamic"]["message"] == (
        "not made: needs the keras-onnx artifact, which was not made"
    )
    assert exports["torch-onnx"]["status"] == "ok"
    assert infers["onnxruntime/torch-onnx"]["status"] == "ok"
    assert "onnxruntime/keras-onnx" not in infers


@pytest.mark.gpu
@pytest.mark.skipif(not gpus(), reason="needs an NVIDIA GPU")
def test_gpu_runtimes_run_and_are_ranked_apart(tmp_path: Path) -> None:
    runtimes = (
        "torch-eager,torch-eager-cuda,torch-compile-cuda,onnxruntime,onnxruntime-cuda,onnxruntime-tensorrt"
    )
    args = ["--artifacts", "torch-onnx", "--runtimes", runtimes, "--batch-sizes", "1,64"]
    result = bakeoff("infer", TINY, "--quick", *args, "--out", str(tmp_path), "--json", timeout=900)
    data = json.loads(result.stdout)
    infers = _by_case(data, "infer")
    for case in ("torch-eager-cuda/torch-twin", "onnxruntime-cuda/torch-onnx"):
        assert infers[case]["status"] == "ok", infers[case]["message"]
        assert infers[case]["metrics"]["device"] == "cuda"
    assert set(infers["summary"]["metrics"]["by_device"]) == {"cpu", "cuda"}


def test_undecided_comparisons_take_more_rounds_at_the_smallest_and_largest_batch(
    run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cases `undecided` names get `decide_rounds` more rounds, in workers forked from a zygote, at
    the ends of the batch sizes only; the others keep their rounds; no zygote or worker is left."""
    import psutil

    from bakeoff.measure.isolation import POOL
    from bakeoff.spec.load import resolve
    from bakeoff.stages.export.exporter import job_request
    from bakeoff.stages.infer import inference

    pair = ["torchscript/torch-torchscript", "litert/keras-tflite-fp32"]
    asked: list[list[str]] = []

    def undecided(records: list[dict[str, Any]], margin: float) -> list[str]:
        asked.append(sorted(r["case"] for r in records))
        return pair

    monkeypatch.setattr(inference, "undecided", undecided)
    options = inference.InferOptions(
        batch_sizes=(1, 2, 4), rounds=2, decide_rounds=2, min_time=0.005, max_time=0.01, max_runs=20
    )
    cases = [*pair, "onnxruntime/torch-onnx"]
    request = job_request(resolve(TINY), Path(run["run_dir"]) / "artifacts", 1)
    records: list[dict[str, Any]] = []
    POOL.close()
    try:
        inference.run_inference(request, cases, options, {}, tmp_path, records.append)
    finally:
        POOL.close()
    assert not psutil.Process().children(recursive=True)
    assert asked == [sorted(cases)]  # asked once, after the main rounds, with every case's record
    got = {r["case"]: r for r in records}
    assert records[0]["case"] == "onnxruntime/torch-onnx"  # recorded first: it waits for no extra round
    assert got["onnxruntime/torch-onnx"]["metrics"]["rounds"] == 2
    for case in pair:
        m = got[case]["metrics"]
        assert got[case]["status"] == "ok", got[case]["message"]
        assert m["rounds"] == 4 and m["decide_rounds"] == 2 and len(m["cold_starts"]) == 4
        assert [len(m["batches"][size]["round_sizes"]) for size in ("1", "2", "4")] == [4, 2, 4]
