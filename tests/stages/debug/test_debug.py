"""The debug stage with real frameworks: a real pdb session in all five modes, planted faults found (or
not) by each framework's tools, bakeoff's finder, and what the report, claims and verdict make of it."""

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
from bakeoff.spec.load import resolve
from bakeoff.stages.debug import debugging, probe, shared
from bakeoff.stages.debug.shared import DebugOptions
from bakeoff.stages.debug.stage import options_for
from bakeoff.stages.train.shared import MODES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The debug stage on simplenet in all five modes with the shape fault only (the cheapest: one
    tool each), so the pdb session covers every mode; one pdb subprocess per framework."""
    out = tmp_path_factory.mktemp("runs")
    options = {"threads": 1, "seed": 0, "debug": options_for(list(MODES), ["shape"])}
    outcome = runner.run_stages("simplenet", out, ["debug"], options, lambda _: None)
    write_after_run(outcome.path, None, [])
    return load_run(outcome.path)


def test_a_real_pdb_session_says_when_print_and_breakpoint_run_in_each_mode(probed: Any) -> None:
    probes = {r["settings"]["mode"]: r for r in probed.stage("debug") if r["case"].startswith("probe/")}
    assert set(probes) == set(MODES), [r["message"] for r in probed.stage("debug")]
    table = {
        mode: (r["metrics"]["print_when"], r["metrics"]["breakpoint_when"]) for mode, r in probes.items()
    }
    print(table)
    # Eager code runs the Python of forward/call at every step, and pdb shows the tensor's numbers there.
    for mode in ("torch-eager", "keras-eager"):
        assert table[mode] == ("every step", "every step")
        assert probes[mode]["metrics"]["sees_values"], probes[mode]["metrics"]["shown"]
    # A tf.function (and XLA) runs call's Python only while tracing: pdb stops on a symbolic tensor.
    for mode in ("keras-graph", "keras-xla"):
        assert table[mode][1].startswith("at trace time")
        assert not probes[mode]["metrics"]["sees_values"]
        assert "shape=" in probes[mode]["metrics"]["shown"]
    # Keras runs call once more while it builds the functional model.
    assert probes["keras-graph"]["metrics"]["build_stops"] >= 1
    assert probes["torch-eager"]["metrics"]["build_stops"] == 0
    assert probes["torch-eager"]["settings"]["default"] and probes["keras-graph"]["settings"]["default"]


def test_the_shape_fault_traceback_and_the_claim(probed: Any) -> None:
    faults = {r["case"]: r["metrics"] for r in probed.stage("debug") if "fault" in r["settings"]}
    eager = faults["shape/none/torch-eager"]
    assert eager["found"] and eager["delay_steps"] == 0 and eager["points_at_line"]
    assert "debug.py" in eager["source"]
    by_id = {c.claim.id: c for c in check_claims(probed)}
    assert by_id["debugging"].status == HOLDS, by_id["debugging"].finding


def test_report_and_verdict_show_the_debug_results(probed: Any) -> None:
    summary = (probed.path / "summary.md").read_text()
    html = (probed.path / "report.html").read_text()
    assert '<section id="debugging">' in html and "breakpoint()" in html
    assert "| shape | none | torch-eager | yes |" in summary
    dim = next(d for d in recommend(probed, Constraints()).dimensions if d.name == "debuggability")
    assert dim.winner == "PyTorch", dim
    assert any("debugger probes pass" in r for r in dim.reasons)


def test_without_the_debug_stage_the_dimension_says_so(tmp_path: Path) -> None:
    from tests.results.run_dirs import _records, _write_run

    run = load_run(_write_run(tmp_path, "nodebug", _records()))
    dim = next(d for d in recommend(run, Constraints()).dimensions if d.name == "debuggability")
    assert dim.winner is None and "debug stage did not run" in dim.finding


def test_planted_nan_found_by_tools_and_finder_in_both_frameworks() -> None:
    graph = resolve("simplenet")
    options = DebugOptions(modes=("torch-eager", "keras-eager"), faults=("nan",), threads=1, probe=False)
    results = debugging.run_faults(graph, options)
    rows = {(t, m): c for rows in results.values() for f, t, m, c in rows}
    assert set(rows) == {
        (t, m) for _, t, m in shared.cases("torch", options) + shared.cases("keras", options)
    }
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
    assert anomaly["found"] and not anomaly["names_layer"]
    assert rows[("terminate_on_nan", "keras-eager")]["found"]
    assert rows[("check_numerics", "keras-eager")]["found"]
    overhead = shared.overheads([(t, m, c["clean_times"]) for (t, m), c in rows.items()])
    assert overhead[("none", "torch-eager")] == 1.0 and overhead[("detect_anomaly", "torch-eager")] > 1.0


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
    assert debug_report.fault_cells(
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
    )[:3] == ["yes", "at model build", "op"]
