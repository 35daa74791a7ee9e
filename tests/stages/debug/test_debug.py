"""The debug stage with real frameworks: a real pdb session in all five modes, a planted NaN found (or
not) by each framework's tools and by bakeoff's finder, and what the report, claims and verdict make of it.

One stage run on simplenet feeds every test here: the nan fault in the two eager modes (the cheapest
cases) and the pdb probe in all five modes (one subprocess per framework, side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bakeoff import runner
from bakeoff.claims.check import check_claims
from bakeoff.claims.rules import HOLDS
from bakeoff.report import debug as debug_report
from bakeoff.report.build import write_after_run
from bakeoff.report.verdict import Constraints, recommend
from bakeoff.results.run import load_run
from bakeoff.stages.debug import probe, shared
from bakeoff.stages.debug.shared import DEBUG_MODES
from bakeoff.stages.debug.stage import options_for


@pytest.fixture(scope="module")
def debugged(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("runs")
    debug = options_for(["torch-eager", "keras-eager"], ["nan"], probe_modes=list(DEBUG_MODES))
    outcome = runner.run_stages("simplenet", out, ["debug"], {"threads": 1, "seed": 0, "debug": debug}, print)
    write_after_run(outcome.path, None, [])
    return load_run(outcome.path)


@pytest.mark.slow
def test_a_real_pdb_session_says_when_print_and_breakpoint_run_in_each_mode(debugged: Any) -> None:
    probes = {r["settings"]["mode"]: r for r in debugged.stage("debug") if r["case"].startswith("probe/")}
    assert set(probes) == set(DEBUG_MODES), [r["message"] for r in debugged.stage("debug")]
    table = {
        mode: (r["metrics"]["print_when"], r["metrics"]["breakpoint_when"]) for mode, r in probes.items()
    }
    print(table)
    # Eager code runs the Python of forward/call at every step, and pdb shows the tensor's numbers there.
    for mode in ("torch-eager", "keras-eager"):
        assert table[mode] == ("every step", "every step")
        assert probes[mode]["metrics"]["sees_values"], probes[mode]["metrics"]["shown"]
    # torch.compile breaks its graph at print() and breakpoint(): both still run at every step.
    assert table["torch-compile"] == ("every step", "every step")
    # A tf.function (and XLA) runs call's Python only while tracing: pdb stops on a symbolic tensor.
    for mode in ("keras-graph", "keras-xla"):
        assert table[mode][1].startswith("at trace time")
        assert not probes[mode]["metrics"]["sees_values"]
        assert "shape=" in probes[mode]["metrics"]["shown"]
    # Keras runs call once more while it builds the functional model; torch does not.
    assert probes["keras-graph"]["metrics"]["build_stops"] >= 1
    assert probes["torch-eager"]["metrics"]["build_stops"] == 0
    assert probes["torch-eager"]["settings"]["default"] and probes["keras-graph"]["settings"]["default"]
    by_id = {c.claim.id: c for c in check_claims(debugged)}
    assert by_id["debugging"].status == HOLDS, by_id["debugging"].finding


@pytest.mark.slow
def test_a_planted_nan_against_each_tool_and_bakeoffs_finder(debugged: Any) -> None:
    rows = {
        (r["settings"]["tool"], r["settings"]["mode"]): r["metrics"]
        for r in debugged.stage("debug")
        if "fault" in r["settings"]
    }
    options = shared.DebugOptions(modes=("torch-eager", "keras-eager"), faults=("nan",))
    assert set(rows) == {(t, m) for fw in ("torch", "keras") for _, t, m in shared.cases(fw, options)}
    step = shared.FAULT_STEP
    for mode in ("torch-eager", "keras-eager"):
        silent = rows[("none", mode)]
        assert not silent["found"] and silent["loss_nonfinite_step"] == step  # NaN loss, nothing raised
        finder = rows[("bakeoff", mode)]
        assert finder["found"] and finder["step"] == step
        assert (finder["finder_layer"], finder["finder_kind"]) == ("fault_nan", "activation")
    hooks = rows[("isfinite", "torch-eager")]
    assert hooks["found"] and hooks["delay_steps"] == 0 and hooks["names_layer"]
    # detect_anomaly sees the NaN only in backward, where the loss's gradient is the first to carry it.
    anomaly = rows[("detect_anomaly", "torch-eager")]
    assert anomaly["found"] and not anomaly["names_layer"] and "Backward" in anomaly["message"]
    assert rows[("terminate_on_nan", "keras-eager")]["found"]
    numerics = rows[("check_numerics", "keras-eager")]
    assert numerics["found"] and numerics["names_layer"] and numerics["points_at_line"]
    for tool, mode in rows:
        assert len(rows[(tool, mode)]["clean_times"]) == step - 1  # the steps before the fault, less one


@pytest.mark.slow
def test_report_and_verdict_show_the_debug_results(debugged: Any) -> None:
    summary = (debugged.path / "summary.md").read_text()
    html = (debugged.path / "report.html").read_text()
    assert '<section id="debugging">' in html and "breakpoint()" in html
    assert "| nan | isfinite | torch-eager | yes | +0 steps | layer |" in summary
    d = debug_report.digest(debugged.latest)
    assert d is not None and d["faults"][0]["overhead"] is not None
    dim = next(d for d in recommend(debugged, Constraints()).dimensions if d.name == "debuggability")
    assert dim.winner == "PyTorch", dim
    assert any("debugger probes pass" in r for r in dim.reasons)


def test_without_the_debug_stage_the_dimension_says_so(tmp_path: Path) -> None:
    from tests.results.run_dirs import _records, _write_run

    run = load_run(_write_run(tmp_path, "nodebug", _records()))
    dim = next(d for d in recommend(run, Constraints()).dimensions if d.name == "debuggability")
    assert dim.winner is None and "debug stage did not run" in dim.finding


def test_stop_parsing_counts_prints_and_stops_per_mode() -> None:
    output = (
        "@@MODE m/build\n@@PRINT\n> f.py(3)call()\n(Pdb) '@@STOP'\n"
        "(Pdb) <KerasTensor shape=(None, 4)>\n(Pdb) "
        "@@MODE m\n@@PRINT\n> f.py(3)call()\n(Pdb) '@@STOP'\n(Pdb) tensor([[1.5, 2.0]])\n(Pdb) @@END m\n"
    )
    (found,) = probe.parse(output)
    assert (found.prints, found.stops, found.build_prints, found.build_stops) == (1, 1, 1, 1)
    assert found.sees_values and found.shown == "tensor([[1.5, 2.0]])"
    assert found.breakpoint_when == "at trace time (1x)"
    assert not probe.sees_values("<tf.Tensor 'x:0' shape=(None, 4) dtype=float32>")
    cells = debug_report.fault_cells(
        {
            "found": True,
            "at_build": True,
            "delay_steps": None,
            "names_layer": False,
            "names_op": True,
            "points_at_line": False,
            "tool": "none",
            "overhead": None,
            "message": "x",
            "loss_nonfinite_step": None,
        }
    )
    assert cells[:3] == ["yes", "at model build", "op"]


def test_first_nonfinite_walks_activations_forward_then_gradients_back() -> None:
    order = ["a", "fault", "b"]
    consumers = shared.consumers_of([("a", ("x",)), ("fault", ("a",)), ("b", ("fault",))])
    finite = dict.fromkeys(order, True)
    assert shared.first_nonfinite(order, {**finite, "fault": False, "b": False}, {}, consumers) == (
        "fault",
        "activation",
    )
    # a's gradient is the first non-finite one walking back from the loss: fault's backward made it.
    grads = {"a": False, "fault": True, "b": True}
    assert shared.first_nonfinite(order, finite, grads, consumers) == ("fault", "gradient")
    assert shared.first_nonfinite(order, finite, dict.fromkeys(order, True), consumers) is None
    assert shared.gradient_scale(shared.FAULT_STEP - 1) == 1.0
    assert shared.gradient_scale(shared.FAULT_STEP + 3) == float("inf")


def test_a_tool_that_stops_before_the_fault_failed_and_tensorflows_message_is_read_past_its_intro() -> None:
    said = (
        "Graph execution error:\n\nDetected at node DebugNumericSummaryV2 defined at (most recent call "
        "last):\n<stack traces unavailable>\n"
        "Detected unsupported operations when trying to compile graph on XLA_CPU_JIT"
    )
    assert shared.first_line(said) == (
        "Graph execution error: Detected unsupported operations when trying to compile graph on XLA_CPU_JIT"
    )
    assert shared.first_line("RuntimeError: boom\nmore") == "RuntimeError: boom"
    assert shared.before_fault({"found": True, "step": 0}, shared.FAULT_STEP)
    assert not shared.before_fault({"found": True, "step": shared.FAULT_STEP}, shared.FAULT_STEP)
    assert not shared.before_fault({"found": True, "step": -1}, shared.FAULT_STEP)  # at model build
