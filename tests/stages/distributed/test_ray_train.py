"""The distributed stage's Ray Train launchers: TorchTrainer and TensorflowTrainer with two workers on a
local Ray cluster on 127.0.0.1 that bakeoff starts and stops per case, held to the one-worker curves by
the same gate; and their planning without processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil
import pytest

from bakeoff import ray_cluster
from bakeoff.errors import UsageError
from bakeoff.measure.env import physical_cores
from bakeoff.spec.load import resolve
from bakeoff.stages.distributed.launch import Nodes, commands
from bakeoff.stages.distributed.scaling import DistOptions, check, plan, run_distributed, summary_record
from bakeoff.stages.distributed.stage import expand_launchers
from bakeoff.stages.train.shared import TrainOptions
from tests.stages.serve.servers.conftest import mentioning

# Few steps, small batches: the test is about the launch path and the gate, not the numbers.
STEPS = 4
BATCH = 16
RAY = ("ray-torch", "ray-tf")


def _options(**kw: Any) -> DistOptions:
    train = TrainOptions(epochs=1, batch_size=BATCH, train_samples=STEPS * BATCH, threads=1, case_timeout=240)
    return DistOptions(train=train, launchers=RAY, **{"all_cores": False, **kw})


def _need_ray_train() -> None:
    """Skips where Ray Train is not installed (checked when the test runs: importing ray.train is slow)."""
    reason = ray_cluster.missing("ray.train.torch", "distributed") or ray_cluster.missing(
        "ray.train.tensorflow", "distributed"
    )
    if reason:
        pytest.skip(reason)


def test_ray_names_both_trainers_and_they_run_after_the_one_worker_baselines() -> None:
    assert expand_launchers(["torchrun", "ray", "ray-tf"]) == ["torchrun", "ray-torch", "ray-tf"]
    names = [c.name for c in plan(_options())]
    assert names == ["torchrun/workers=1", "mirrored/workers=1", "ray-torch/workers=2", "ray-tf/workers=2"]
    ((driver, env),) = commands("ray-tf", Path("r.json"), 2, Nodes(), "id")
    assert driver[-2:] == ["bakeoff.stages.distributed.ray_train", "r.json"] and "PYTHONPATH" in env


def test_ray_launchers_refuse_nodes() -> None:
    _need_ray_train()
    with pytest.raises(UsageError, match="give --ray-address"):
        check(resolve("simplenet"), _options(nodes=Nodes(("127.0.0.1:1", "127.0.0.1:2"), 0)))


@pytest.mark.slow
def test_ray_trainers_match_the_one_worker_curves_and_leave_no_ray_process(tmp_path: Path) -> None:
    _need_ray_train()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    got: list[dict[str, Any]] = []
    run_distributed(resolve("simplenet"), _options(), tmp_path, got.append, lambda _: None)
    records = {r["case"]: r for r in got}
    for case, api in (("ray-torch/workers=2", "ray-train-torch"), ("ray-tf/workers=2", "ray-train-tf")):
        r = records[case]
        assert r["status"] == "ok", (case, r["message"])
        m, s = r["metrics"], r["settings"]
        assert m["matches_single"] is True and m["vs_single"]["max_rel_loss_diff"] < 1e-4
        assert len(m["step_times"]) == STEPS and m["launch_to_first_step_s"] > 0
        assert s["api"] == api and s["workers"] == 2 and "Ray actor each" in s["layout"]
        assert s["cluster"].startswith("a local Ray cluster on 127.0.0.1")
        # Ray's MASTER_ADDR and TF_CONFIG: loopback, not the machine's interface address.
        assert s["addresses"] and all(a.startswith("127.0.0.1:") for a in s["addresses"]), s["addresses"]
    assert records["ray-torch/workers=2"]["settings"]["backend"] == "gloo"
    assert records["ray-tf/workers=2"]["settings"]["keras_fixes"] == ["symbolic_build", "scalar_logs"]
    assert records["ray-tf/workers=2"]["metrics"]["split_matches"] is True
    summary = summary_record(got, physical_cores())
    assert summary is not None and summary["status"] == "ok", summary and summary["message"]
    pairs = {c["pair"]: c["ok"] for c in summary["metrics"]["cross"]}
    assert pairs["ray-torch/workers=2 vs ray-tf/workers=2"]
    # Nothing of either cluster is left: no child of ours, no process naming its temp dir, no temp dir.
    temps = [json.loads(p.read_text())["ray_temp_dir"] for p in tmp_path.glob("ray-*/request.json")]
    assert len(temps) == 2
    for temp in temps:
        assert mentioning(temp) == [] and not Path(temp).exists()
    assert mentioning(str(tmp_path)) == []
    assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()
