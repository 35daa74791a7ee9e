"""The article's claims decided from synthetic runs in the real record format: a claim that holds, one that
does not, no practical difference, an interval across the margin, not measured; a stage that does not
exist yet lighting its claims up; and the claims in report.html, summary.md, results.json, the terminal,
`bakeoff claims` and `bakeoff compare`. No frameworks are started."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from bakeoff.claims.catalogue import BY_ID, CLAIMS
from bakeoff.claims.check import check_claims, status_changes
from bakeoff.claims.render import markdown_lines, terminal_table
from bakeoff.claims.rules import FAILS, HOLDS, NOT_MEASURED, RULES, SAME, STATUSES, UNDECIDED
from bakeoff.cli import app
from bakeoff.report.build import write_report
from bakeoff.results.run import Run, load_run
from bakeoff.results.store import make_record
from bakeoff.stages.serve import OWN_TFSERVING
from tests.results.run_dirs import _infer, _render, _train, _write_run

STAGES = ("parity", "train", "pipeline", "export", "infer")


def _run(tmp_path: Path, name: str, records: list[dict[str, Any]], **kwargs: Any) -> Run:
    return load_run(_write_run(tmp_path, name, records, stages=kwargs.pop("stages", STAGES), **kwargs))


TRAIN_SETTINGS = {"epochs": 1, "batch_size": 64, "threads": 2, "device": "cpu", "compile_mode": "default"}


def _training(compile_step: float, xla_step: float) -> list[dict[str, Any]]:
    records = [
        _train("torch-eager", 0.003, seed=3),
        _train("torch-compile", compile_step, seed=1),
        _train("keras-xla", xla_step, seed=2),
    ]
    return [{**r, "settings": TRAIN_SETTINGS} for r in records]


def _status(run: Run, claim: str) -> Any:
    (found,) = [c for c in check_claims(run) if c.claim.id == claim]
    return found


def test_every_claim_has_a_rule_and_a_status_on_any_run(tmp_path: Path) -> None:
    assert {c.rule for c in CLAIMS} <= set(RULES)
    assert len(BY_ID) == len(CLAIMS)
    checked = check_claims(_run(tmp_path, "r", _training(0.002, 0.004)))
    assert [c.claim.id for c in checked] == [c.id for c in CLAIMS]
    assert all(c.status in STATUSES and c.finding.summary for c in checked)


def test_a_claim_holds_fails_or_shows_no_practical_difference_with_its_interval(tmp_path: Path) -> None:
    holds = _status(_run(tmp_path, "holds", _training(0.002, 0.004)), "compile-vs-xla")
    assert holds.status == HOLDS
    (c,) = holds.finding.comparisons
    assert c.a == "torch-compile" and c.b == "keras-xla" and c.better == "a"
    assert 0.45 < c.low <= c.ratio <= c.high < 0.55  # half the step time, with its interval
    assert "95% CI" in c.sentence(0.05) and "outside the ±5% margin" in c.sentence(0.05)

    fails = _status(_run(tmp_path, "fails", _training(0.004, 0.002)), "compile-vs-xla")
    assert fails.status == FAILS and fails.finding.summary == "XLA trains faster than torch.compile here"

    same = _status(_run(tmp_path, "same", _training(0.003, 0.003)), "compile-vs-xla")
    assert same.status == SAME and "not past it" in same.finding.summary
    (c,) = same.finding.comparisons
    assert c.better == "equivalent" and c.low >= 1 / 1.05 and c.high <= 1.05


def test_a_claim_measured_on_a_busy_machine_is_not_decided(tmp_path: Path) -> None:
    run = _run(tmp_path, "busy", _training(0.002, 0.004))
    info = json.loads((run.path / "run.json").read_text())
    info["guard"] = {"train": {"noisy": True, "why": "other processes used 1.00 of 2 cores on average"}}
    (run.path / "run.json").write_text(json.dumps(info))
    busy = _status(load_run(run.path), "compile-vs-xla")
    assert busy.status == UNDECIDED
    assert busy.finding.summary.startswith("the machine was busy during the train stage (other processes")
    assert busy.finding.comparisons  # what was measured is still shown


@pytest.mark.parametrize("compile_step", [0.002, 0.003])  # a win, and no practical difference
def test_a_quick_run_shows_but_does_not_decide_speed_claims(tmp_path: Path, compile_step: float) -> None:
    """As the verdict: between quick runs the modes move by more than the margin."""
    records = _training(compile_step, 0.004 if compile_step == 0.002 else 0.003)
    quick = _status(_run(tmp_path, "quick", records, quick=True), "compile-vs-xla")
    assert quick.status == UNDECIDED and quick.finding.comparisons
    assert quick.finding.summary.startswith("a --quick run times each contender")
    assert "; measured: " in quick.finding.summary
    assert _status(_run(tmp_path, "full", records), "compile-vs-xla").status in (HOLDS, SAME)


def _steps(mode: str, step: float, spread: float, n: int, seed: int) -> dict[str, Any]:
    times = list(step * np.random.default_rng(seed).lognormal(0, spread, n))
    metrics = {"step_times": times, "step_s": {"median": float(np.median(times))}}
    return make_record("train", mode, "ok", framework=mode.split("-")[0], metrics=metrics)


def test_a_difference_inside_the_margin_is_never_a_win(tmp_path: Path) -> None:
    # 3% apart with tight samples: significant, but inside ±5% it is no practical difference...
    close = [_steps("torch-compile", 0.00309, 0.005, 200, 1), _steps("keras-xla", 0.003, 0.005, 200, 2)]
    run = _run(tmp_path, "close", close)
    assert _status(run, "compile-vs-xla").status == SAME
    # ...and at a 1% margin it is a difference, as `--margin` asks.
    (c,) = [c for c in check_claims(run, 0.01) if c.claim.id == "compile-vs-xla"]
    assert c.status == FAILS


def test_an_interval_across_the_margin_decides_nothing(tmp_path: Path) -> None:
    noisy = [_steps("torch-compile", 0.00306, 0.4, 12, 1), _steps("keras-xla", 0.003, 0.4, 12, 2)]
    found = _status(_run(tmp_path, "noisy", noisy), "compile-vs-xla")
    assert found.status == UNDECIDED and "straddles" in found.finding.summary
    (c,) = found.finding.comparisons
    assert c.low < 1 / 1.05 or c.high > 1.05


def test_claims_without_their_records_say_what_would_measure_them(tmp_path: Path) -> None:
    run = _run(tmp_path, "cpu", _training(0.002, 0.004))
    by_id = {c.claim.id: c for c in check_claims(run)}
    for claim in ("tf-serving", "triton-batching", "debugging", "keras3-backends", "distribute"):
        assert by_id[claim].status == NOT_MEASURED
        assert f"no {BY_ID[claim].stage} stage in this run" in by_id[claim].finding.summary
    assert "needs a GPU" in by_id["gpu-utilization"].finding.summary
    assert "needs a GPU" in by_id["tensorrt"].finding.summary
    assert "--compile-mode default" in by_id["reduce-overhead"].finding.summary
    assert "bakeoff convert" in by_id["onnx-conversion"].finding.summary
    stopped = _run(tmp_path, "stopped", _training(0.002, 0.004), finished=False)
    assert "stopped before its infer stage" in _status(stopped, "tflite-edge").finding.summary


def _served(server: str, batching: str, rps: float, latency: float, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return make_record(
        "serve",
        f"{server}/model/{batching}",
        "ok",
        framework="native",
        metrics={
            "latency_s": list(latency * rng.lognormal(0, 0.05, 200)),
            "throughput_rps": list(rps * rng.lognormal(0, 0.02, 20)),
        },
        settings={"server": server, "batching": batching, "concurrency": 8},
    )


def test_a_new_stage_lights_its_claims_up_without_touching_the_catalogue(tmp_path: Path) -> None:
    records = [
        _served("tf-serving", "dynamic", 3000, 0.002, 1),
        _served("triton", "dynamic", 2400, 0.003, 2),
        _served("triton", "none", 1200, 0.004, 3),
        make_record("backends", "tensorflow", "ok", metrics={"max_abs_diff": 1e-6}, settings={"atol": 1e-5}),
        make_record("backends", "torch", "ok", metrics={"max_abs_diff": 2e-6}, settings={"atol": 1e-5}),
        make_record("backends", "jax", "failed", message="jax is not installed"),
        *(
            make_record(
                "debug",
                f"{fw}/default",
                "ok",
                metrics={"other": 1},
                settings={"framework": fw, "default": True},
            )
            for fw in ("torch", "keras")
        ),
    ]
    run = _run(tmp_path, "serve", records, stages=("serve", "backends", "debug"))
    by_id = {c.claim.id: c for c in check_claims(run)}
    assert by_id["tf-serving"].status == HOLDS
    assert [c.what for c in by_id["tf-serving"].finding.comparisons] == ["request latency", "throughput"]
    # The same numbers from bakeoff's stand-in for TF Serving decide nothing about TF Serving.
    records[0]["settings"]["implementation"] = OWN_TFSERVING
    stand_in = {c.claim.id: c for c in check_claims(_run(tmp_path, "stand-in", records, stages=("serve",)))}
    finding = stand_in["tf-serving"].finding
    assert (
        stand_in["tf-serving"].status == NOT_MEASURED
        and "tensorflow_model_server did not run" in finding.summary
    )
    assert "TF Serving beats every other server" in finding.summary and len(finding.comparisons) == 2
    assert by_id["triton-batching"].status == HOLDS
    assert by_id["torchserve-batching"].status == NOT_MEASURED
    assert "without torchserve" in by_id["torchserve-batching"].finding.summary
    assert by_id["keras3-backends"].status == FAILS and "jax" in by_id["keras3-backends"].finding.summary
    # A record of another shape than the rule documents: not measured, naming what it lacked.
    assert by_id["debugging"].status == NOT_MEASURED
    assert (
        "debug records do not have the shape rules.debugging reads (KeyError"
        in by_id["debugging"].finding.summary
    )


def test_the_distributed_stage_decides_by_changed_lines_once_both_apis_train_alike(tmp_path: Path) -> None:
    def dist(api: str, lines: int, matches: bool = True) -> dict[str, Any]:
        metrics = {"lines_changed": lines, "matches_single": matches, "step_times": [0.01, 0.011, 0.012]}
        return make_record(
            "distributed", f"{api}/2", "ok", metrics=metrics, settings={"api": api, "workers": 2}
        )

    run = _run(tmp_path, "d", [dist("tf.distribute", 4), dist("torch.distributed", 12), dist("lightning", 2)])
    by_id = {c.claim.id: c for c in check_claims(run)}
    assert by_id["distribute"].status == HOLDS and by_id["lightning-accelerate"].status == HOLDS
    broken = _run(tmp_path, "e", [dist("tf.distribute", 4, matches=False), dist("torch.distributed", 12)])
    assert _status(broken, "distribute").status == FAILS


def _inference() -> list[dict[str, Any]]:
    return [
        _infer("litert/keras-tflite-fp32", {1: 1e-5, 64: 2e-4}, seed=1),
        _infer("onnxruntime/torch-onnx", {1: 3e-5, 64: 1e-4}, seed=2),
        _infer("torchscript/torch-torchscript", {1: 1e-4, 64: 3e-4}, seed=3),
    ]


def test_report_summary_results_and_terminal_show_the_claims(tmp_path: Path) -> None:
    run = _run(tmp_path, "report", _training(0.002, 0.004) + _inference())
    write_report(run)
    html = (run.path / "report.html").read_text()
    assert '<section id="claims">' in html and html.index('id="claims"') < html.index('id="environment"')
    assert 'id="claim-compile-vs-xla"' in html and '<a href="#training">Training</a>' in html
    assert '<span class="ok">holds</span>' in html and "not measured" in html
    summary = (run.path / "summary.md").read_text()
    assert "### The article's claims, checked" in summary
    assert "| **holds** |" in summary and "(report.html#inference)" in summary
    results = json.loads((run.path / "results.json").read_text())
    claims = {c["id"]: c for c in results["claims"]["claims"]}
    assert results["claims"]["margin"] == 0.05 and set(claims) == set(BY_ID)
    assert claims["tflite-edge"]["status"] == HOLDS and claims["tflite-edge"]["comparisons"][0]["low"] > 0
    text = _render(terminal_table(check_claims(run), 0.05))
    assert "compile-vs-xla" in text and "holds" in text and "not measured" in text
    assert markdown_lines(check_claims(run), 0.05)[0] == "### The article's claims, checked"


def test_claims_command_prints_the_table_or_json_and_refuses_a_non_run(tmp_path: Path) -> None:
    run = _run(tmp_path, "cli", _training(0.002, 0.004))
    runner = CliRunner()
    table = runner.invoke(app, ["claims", str(run.path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "The article's claims, checked (margin ±5%)" in table.output
    as_json = runner.invoke(app, ["claims", str(run.path), "--json", "--margin", "0.1"])
    data = json.loads(as_json.output)
    assert data["margin"] == 0.1 and data["claims"][0]["status"] == HOLDS
    with pytest.raises(Exception, match="not a bakeoff run directory"):
        runner.invoke(app, ["claims", str(tmp_path)], catch_exceptions=False)


def test_compare_shows_the_claims_whose_status_changed(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", _training(0.002, 0.004))
    b = _run(tmp_path, "b", _training(0.004, 0.002))
    (change,) = [ch for ch in status_changes(a, b) if ch.id == "compile-vs-xla"]
    assert (change.before, change.after) == (HOLDS, FAILS)
    result = CliRunner().invoke(app, ["compare", str(a.path), str(b.path), "--json"])
    changed = {c["id"]: c for c in json.loads(result.output)["claims_changed"]}
    assert changed["compile-vs-xla"]["after"] == FAILS
    table = CliRunner().invoke(app, ["compare", str(a.path), str(b.path)], env={"COLUMNS": "200"})
    assert "claims whose status changed" in table.output and "compile-vs-xla" in table.output
    assert not status_changes(a, a)
