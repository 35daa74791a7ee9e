"""The distributed stage on simplenet: torchrun + DDP, Keras under MultiWorkerMirroredStrategy and
MirroredStrategy, one and two workers, real processes on 127.0.0.1; and its parts without processes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from bakeoff.cli.run import LAUNCHER_NAMES
from bakeoff.errors import UsageError
from bakeoff.measure.env import physical_cores
from bakeoff.spec.load import resolve
from bakeoff.stages.distributed.launch import GroupResult, Nodes, RankResult, commands, run_group, tf_config
from bakeoff.stages.distributed.lines import lines_changed
from bakeoff.stages.distributed.scaling import (
    Case,
    DistOptions,
    case_record,
    check,
    plan,
    run_distributed,
    summary_record,
)
from bakeoff.stages.distributed.shared import LAUNCHERS, rank_slice
from bakeoff.stages.distributed.stage import parse_nodes
from bakeoff.stages.train.shared import TrainOptions

STEPS = 8
BATCH = 32


def _options(**kw: Any) -> DistOptions:
    train = TrainOptions(epochs=1, batch_size=BATCH, train_samples=STEPS * BATCH, threads=1, case_timeout=300)
    return DistOptions(train=train, **{"all_cores": False, **kw})


# ---------------------------------------------------------------- without processes


def test_cli_names_the_launchers_the_stage_has() -> None:
    assert set(LAUNCHER_NAMES) == set(LAUNCHERS)


def test_rank_r_gets_the_r_th_slice_of_every_global_batch() -> None:
    samples = np.arange(3 * 8)
    got = [[samples[rank_slice(step, r, 2, 8)].tolist() for r in range(2)] for step in range(3)]
    assert got[1] == [[8, 9, 10, 11], [12, 13, 14, 15]]
    assert sorted(i for step in got for part in step for i in part) == samples.tolist()  # every sample once


def test_plan_runs_each_frameworks_baseline_first_then_every_launcher() -> None:
    names = [c.name for c in plan(_options(scaling=("strong", "weak")))]
    assert names == [
        "torchrun/workers=1",
        "mirrored/workers=1",
        "torchrun/workers=2",
        "torchrun/workers=2/weak",
        "mwms/workers=2",
        "mwms/workers=2/weak",
        "mirrored/workers=2",
        "mirrored/workers=2/weak",
    ]
    with_all = [c.name for c in plan(_options(all_cores=True))]
    assert with_all[2:4] == ["torchrun/workers=1/all-cores", "mirrored/workers=1/all-cores"]
    weak = [c for c in plan(_options(scaling=("weak",))) if c.scaling == "weak"]
    assert {c.global_batch for c in weak} == {2 * BATCH}


def test_check_refuses_oversubscription_an_uneven_split_and_unknown_names() -> None:
    graph = resolve("simplenet")
    cores = physical_cores()
    with pytest.raises(UsageError, match="must not exceed the cores"):
        check(graph, _options(workers=(1, 2 * cores)))
    with pytest.raises(UsageError, match="does not split evenly over 3 workers"):
        check(graph, _options(workers=(1, 3)))
    with pytest.raises(UsageError, match="unknown launcher"):
        check(graph, _options(launchers=("horovod",)))
    with pytest.raises(UsageError, match="node-rank 2"):
        check(graph, _options(nodes=Nodes(("127.0.0.1:1", "127.0.0.1:2"), 2)))


def test_nodes_parse_and_lay_out_torchrun_and_tf_config() -> None:
    assert parse_nodes("127.0.0.1:29500, 127.0.0.1:29510") == ["127.0.0.1:29500", "127.0.0.1:29510"]
    with pytest.raises(UsageError, match="not host:port"):
        parse_nodes("node1")
    nodes = Nodes(("10.0.0.1:29500", "10.0.0.2:29600"), 1)
    ((torchrun, _),) = commands("torchrun", Path("r.json"), 2, nodes, "id")
    assert "--rdzv-endpoint=10.0.0.1:29500" in torchrun and "--local-addr=10.0.0.2" in torchrun
    assert "--nnodes=2" in torchrun and "--node-rank=1" in torchrun
    cluster = tf_config(2, nodes, 3)["cluster"]["worker"]
    assert cluster == ["10.0.0.1:29500", "10.0.0.1:29501", "10.0.0.2:29600", "10.0.0.2:29601"]
    with pytest.raises(UsageError, match=r"both need 127\.0\.0\.1:29501"):
        check(resolve("simplenet"), _options(nodes=Nodes(("127.0.0.1:29500", "127.0.0.1:29501"), 0)))
    keras = commands("mwms", Path("r.json"), 2, nodes, "id")
    assert [c[0][-1] for c in keras] == ["2", "3"]  # node 1's workers are global workers 2 and 3


def test_lines_changed_are_counted_from_the_shipped_scripts() -> None:
    counts = {launcher: lines_changed(launcher) for launcher in LAUNCHERS}
    assert all(c > 0 for c in counts.values())
    assert counts["mwms"] < counts["torchrun"]  # a strategy scope against process group + DDP + sampler


def _result(losses: list[float], times: list[float]) -> GroupResult:
    arrays = {
        "step_times": np.array(times),
        "step_losses": np.array(losses),
        "allreduce_times": np.array([1e-3, 2e-3, 3e-3]),
    }
    meta = {"first_step_end_wall": 105.0}
    return GroupResult({0: RankResult(True, arrays, meta)}, 100.0, 10**8, 6.0)


def test_a_two_worker_curve_off_the_one_worker_curve_fails_the_gate_naming_the_step() -> None:
    from bakeoff.data.datasets import load

    opts = _options()
    data = load(resolve("simplenet"), None, 0)
    losses = [2.3, 2.2, 2.1, 2.0]
    single = case_record(
        Case("torchrun", 1, "strong", BATCH),
        _result(losses, [1.0, 0.1, 0.1, 0.1]),
        opts,
        opts.train,
        data,
        [],
    )
    assert single["status"] == "ok" and single["metrics"]["matches_single"]
    off = [2.3, 2.2, 2.1 * (1 + 1e-3), 2.0]
    two = case_record(
        Case("torchrun", 2, "strong", BATCH),
        _result(off, [1.0, 0.2, 0.2, 0.2]),
        opts,
        opts.train,
        data,
        [single],
    )
    assert two["status"] == "failed" and two["metrics"]["matches_single"] is False
    assert "step 3" in two["message"]
    assert two["metrics"]["launch_to_first_step_s"] == pytest.approx(5.0)
    summary = summary_record([single, {**two, "status": "ok"}], cores=2)
    row = next(r for r in summary["metrics"]["table"] if r["workers"] == 2)
    assert row["speedup"] == pytest.approx(0.5) and row["efficiency"] == pytest.approx(0.25)
    assert "cannot pay on this 2-core machine" in summary["metrics"]["verdict"]


# ---------------------------------------------------------------- real processes


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every launcher at one and two workers on simplenet, a few steps: one run shared by the tests."""
    got: list[dict[str, Any]] = []
    run_distributed(
        resolve("simplenet"), _options(), tmp_path_factory.mktemp("dist"), got.append, lambda _: None
    )
    summary = summary_record(got, physical_cores())
    assert summary is not None
    return {r["case"]: r for r in [*got, summary]}


@pytest.mark.slow
def test_every_case_finishes_and_matches_its_one_worker_curve(records: dict[str, dict[str, Any]]) -> None:
    cases = [
        "torchrun/workers=1",
        "mirrored/workers=1",
        "torchrun/workers=2",
        "mwms/workers=2",
        "mirrored/workers=2",
    ]
    for case in cases:
        r = records[case]
        assert r["status"] == "ok", (case, r["message"])
        m = r["metrics"]
        assert m["matches_single"] is True
        assert len(m["step_times"]) == len(m["step_losses"]) == STEPS
        assert m["launch_to_first_step_s"] > 0 and m["rss_peak_bytes"] > 50e6
        assert r["settings"]["workers"] == int(case.split("=")[1].split("/")[0])
    for case in cases[2:]:
        assert records[case]["metrics"]["vs_single"]["steps"] >= 1
        assert records[case]["metrics"]["vs_single"]["max_rel_loss_diff"] < 1e-4


@pytest.mark.slow
def test_keras_workers_get_torchs_slices_and_mwms_records_its_workarounds(
    records: dict[str, dict[str, Any]],
) -> None:
    for case in ("mirrored/workers=1", "mwms/workers=2", "mirrored/workers=2"):
        assert records[case]["metrics"]["split_matches"] is True
    assert records["mwms/workers=2"]["settings"]["keras_fixes"] == ["symbolic_build", "scalar_logs"]
    assert records["mirrored/workers=2"]["settings"]["keras_fixes"] == []
    assert records["torchrun/workers=2"]["settings"]["backend"] == "gloo"
    assert "2 worker(s) x 1 thread(s)" in records["torchrun/workers=2"]["settings"]["layout"]


@pytest.mark.slow
def test_torch_and_keras_two_worker_curves_agree_and_the_summary_has_the_table(
    records: dict[str, dict[str, Any]],
) -> None:
    summary = records["summary"]
    assert summary["status"] == "ok", summary["message"]
    pairs = {c["pair"]: c for c in summary["metrics"]["cross"]}
    assert pairs["torchrun/workers=2 vs mwms/workers=2"]["ok"]
    assert pairs["torchrun/workers=2 vs mirrored/workers=2"]["ok"]
    table = {row["case"]: row for row in summary["metrics"]["table"]}
    assert table["torchrun/workers=2"]["efficiency"] is not None
    assert table["torchrun/workers=2"]["allreduce_s"] > 0


@pytest.mark.slow
def test_a_case_past_its_time_is_killed_with_its_whole_process_group(tmp_path: Path) -> None:
    from bakeoff.data.datasets import load
    from bakeoff.stages.train.training import prepare

    graph = resolve("simplenet")
    opts = _options()
    request = prepare(graph, opts.train, load(graph, None, 0).head(STEPS * BATCH), tmp_path / "inputs")
    request.update(launcher="torchrun", workers=2, threads=1, collective_timeout=60)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    started = time.perf_counter()
    result = run_group(
        "torchrun", request, tmp_path / "case", workers=2, threads=1, nodes=Nodes(), timeout=1.0
    )
    assert not result.ok and "timed out after 1 s" in result.why()
    assert time.perf_counter() - started < 15
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left
    # torchrun starts each rank in a session of its own: orphans would no longer be our children.
    mine = str(tmp_path / "case")
    ranks = [p for p in psutil.process_iter(["cmdline"]) if any(mine in a for a in p.info["cmdline"] or ())]
    assert not ranks, [p.pid for p in ranks]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "mwms"])
def test_two_nodes_on_loopback_train_like_one_process(launcher: str, tmp_path: Path) -> None:
    """Two "nodes" on 127.0.0.1, one worker each, started side by side as two bakeoffs would be:
    torchrun's c10d rendezvous at node 0; for TensorFlow a two-host TF_CONFIG (node k's worker listens on
    node k's port). Both ranks hold the same loss curve, and it is a real two-worker run."""
    from concurrent.futures import ThreadPoolExecutor

    from bakeoff.data.datasets import load
    from bakeoff.process_group import free_port
    from bakeoff.stages.train.training import prepare

    graph = resolve("simplenet")
    opts = _options()
    request = prepare(graph, opts.train, load(graph, None, 0).head(STEPS * BATCH), tmp_path / "inputs")

    def node(hosts: tuple[str, ...], k: int) -> GroupResult:
        req = {**request, "case": f"{launcher}-two-nodes", "launcher": launcher, "workers": 2, "threads": 1}
        req["collective_timeout"] = 120
        return run_group(
            launcher,
            req,
            tmp_path / f"node{k}",
            workers=1,
            threads=1,
            nodes=Nodes(hosts, k),
            timeout=240,
        )

    # Each node's own port: torchrun uses node 0's only, TensorFlow's workers listen on both.
    hosts = (f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(node, hosts, k) for k in (0, 1)]]
    for result in results:
        assert result.ok, result.why()
    node0, node1 = results
    assert node0.ranks[0].meta["world"] == 2 and set(node1.ranks) == {1}
    if launcher == "mwms":  # the strategy itself saw both nodes' workers
        assert node0.ranks[0].meta["replicas"] == node1.ranks[1].meta["replicas"] == 2
        assert node1.ranks[1].meta["split_matches"] is True
    np.testing.assert_allclose(node1.ranks[1].arrays["step_losses"], node0.ranks[0].arrays["step_losses"])


def _gpu_options(launchers: tuple[str, ...]) -> DistOptions:
    from bakeoff.measure.env import gpus

    count = min(2, len(gpus()))
    train = replace(_options().train, device="cuda")
    return DistOptions(train=train, launchers=launchers, workers=tuple(range(1, count + 1)))


def _has_gpu() -> bool:
    from bakeoff.measure.env import gpus

    return bool(gpus())


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _has_gpu(), reason="needs an NVIDIA GPU")
def test_ddp_over_nccl_on_the_gpus_matches_one_gpu(tmp_path: Path) -> None:
    got: list[dict[str, Any]] = []
    run_distributed(resolve("simplenet"), _gpu_options(("torchrun",)), tmp_path, got.append, lambda _: None)
    for r in got:
        assert r["status"] == "ok", r["message"]
        assert r["settings"]["backend"] == "nccl" and r["metrics"]["matches_single"]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _has_gpu(), reason="needs an NVIDIA GPU")
def test_keras_strategies_over_gpus_match_one_gpu(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("this TensorFlow build sees no GPU")
    got: list[dict[str, Any]] = []
    opts = _gpu_options(("mirrored", "mwms"))
    run_distributed(resolve("simplenet"), opts, tmp_path, got.append, lambda _: None)
    for r in got:
        assert r["status"] == "ok", r["message"]
        assert r["metrics"]["matches_single"] and r["metrics"]["split_matches"]


@pytest.mark.slow
def test_accelerate_and_lightning_train_like_the_raw_ddp_loop(
    records: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    from bakeoff.stages.train.training import compare_curves

    got: list[dict[str, Any]] = []
    opts = _options(launchers=("accelerate", "lightning"), workers=(2,))
    run_distributed(resolve("simplenet"), opts, tmp_path, got.append, lambda _: None)
    raw = records["torchrun/workers=2"]
    assert [r["case"] for r in got] == ["accelerate/workers=2", "lightning/workers=2"]
    for r in got:
        assert r["status"] == "ok", r["message"]
        assert r["settings"]["api"] == r["settings"]["launcher"]
        assert len(r["metrics"]["step_times"]) == STEPS
        assert compare_curves(r["metrics"], raw["metrics"], None)["ok"]
    summary = summary_record([raw, *got], physical_cores())
    assert summary is not None
    overhead = {row["case"]: row["vs_raw_loop"] for row in summary["metrics"]["table"]}
    assert overhead["accelerate/workers=2"] > 0 and overhead["lightning/workers=2"] > 0
