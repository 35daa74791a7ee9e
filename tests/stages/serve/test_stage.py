"""The serve stage end to end on bakeoff's TF Serving API server, kept short: records of the shape the claims
read, answers checked against TensorFlow in-process, the bad-input matrix, versions and labels, a server that
cannot start recorded as failed while the rest go on, and no process left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bakeoff.claims import rules
from bakeoff.results.run import load_run
from bakeoff.results.store import RunStore
from bakeoff.spec.load import resolve
from bakeoff.stages.context import RunContext
from bakeoff.stages.serve import servers, stage

pytestmark = pytest.mark.slow


def test_serve_stage_records_one_server_and_fails_a_missing_one(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copytree(exported / "artifacts" / "keras-savedmodel", run_dir / "artifacts" / "keras-savedmodel")
    shutil.copy(exported / "run.json", run_dir / "run.json")
    for name in ("data.npz", "reference-keras.npz"):
        shutil.copy(exported / "artifacts" / name, run_dir / "artifacts" / name)
    monkeypatch.setitem(servers.SERVERS, "nowhere", "bakeoff.stages.serve.servers.not_built_here")
    monkeypatch.setitem(stage.RECORD_NAME, "nowhere", "nowhere")
    options = {
        "threads": 1,
        "seed": 0,
        "serve": {
            "servers": ["nowhere", "tfserving"],
            "slo_ms": 1000.0,
            "duration": 0.4,
            "concurrency": [4],
            "knee": [1.0],
            "search_steps": 2,
            "batching": [True],
            "quick": True,
        },
    }
    store = RunStore(run_dir)
    ctx = RunContext(resolve("simplenet"), store, options, progress=_stamp)
    stage.check(ctx.graph, options)
    stage.run(ctx)

    records = {r["case"]: r for r in store.records() if r["stage"] == "serve"}
    missing = records["nowhere/batching-on/slo"]
    assert missing["status"] == "failed" and "not available" in missing["message"]
    slo = records["tf-serving/batching-on/slo"]
    assert slo["status"] == "ok", slo["message"]
    s, m = slo["settings"], slo["metrics"]
    assert s["server"] == "tf-serving" and s["batching"] == "dynamic"
    assert s["implementation"] == "TF Serving API, bakeoff's implementation"
    assert all(a["status"] == "ok" for a in m["answers"].values()), m["answers"]
    assert {"tfserving-rest (row)", "tfserving-rest (columnar)", "tfserving-grpc"} <= set(m["answers"])
    assert m["slo_met"] and m["slo_throughput_rps"] > 0 and m["latency_s"] and m["throughput_rps"]
    assert m["generator"]["ceiling_rps"] > m["slo_throughput_rps"]
    assert m["bad_inputs"]["malformed_json"]["status"] == 400
    assert m["features"]["canary"]["served_share"] == pytest.approx(m["features"]["canary"]["sent_share"])
    assert m["resources"]["rss_peak_bytes"] > 0 and m["cold_start_s"] > 0
    sweep = records["tf-serving/batching-on/c4"]
    assert sweep["settings"]["concurrency"] == 4 and sweep["metrics"]["throughput_rps"]
    grpc = records["tf-serving/batching-on/tfserving-grpc/c4"]  # the same server over its gRPC API
    assert grpc["status"] == "ok" and grpc["settings"]["load_protocol"] == "tfserving-grpc"
    assert grpc["metrics"]["ok"] > 0 and not grpc["metrics"]["errors"] and not grpc["metrics"]["timeouts"]

    # The report's serving section: the stand-in said as such, both protocols in the sweep, the matrix.
    from bakeoff.report import html_sections
    from bakeoff.report import serving as srv

    digest = {"serve": srv.digest(load_run(run_dir)), "stages": ["serve"]}
    page = html_sections.serving(digest)
    assert "not TF Serving&#x27;s own performance" in page or "not TF Serving's own performance" in page
    assert "tfserving-grpc" in page and "tfserving-rest" in page and "Bad input" in page

    # The claims read these records without tripping: TF Serving ran alone, so nothing is compared.
    finding = rules.tf_serving(load_run(run_dir), 0.05)
    assert "alone" in finding.summary
    assert _processes_under(run_dir) == [], "a server process outlived the stage"


def _processes_under(folder: Path) -> list[int]:
    import psutil

    left = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if any(str(folder) in part for part in p.info["cmdline"] or []):
            left.append(p.info["pid"])
    return left


def _stamp(line: str) -> None:
    import time

    print(time.strftime("%X"), line)
