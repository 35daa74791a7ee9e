"""Ray Train's driver for the `ray-torch` and `ray-tf` launchers: `python -m
bakeoff.stages.distributed.ray_train REQUEST.json`. It joins the Ray cluster at the request's address,
or starts a local one on 127.0.0.1 with workers x threads CPUs, and runs the case's training with
TorchTrainer or TensorflowTrainer, one Ray actor per worker.

Each actor runs the same per-rank code torchrun's and MultiWorkerMirroredStrategy's processes run
(`frameworks/{torch,keras}/distributed.py`); Ray sets up the torch process group (MASTER_ADDR from the
rank-0 actor's node) or writes TF_CONFIG, and each rank writes its result where the stage's parent reads
it. On someone else's cluster the workers must see this machine's files (the case's inputs and results):
one machine, or a shared file system.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from bakeoff.stages.distributed.shared import write_rank_error

# What Ray's TensorflowTrainer sets for tf_keras (Keras 2); bakeoff trains with Keras 3, so a worker takes
# it out before importing Keras.
LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"


def _torch_worker(config: dict[str, Any]) -> None:
    import ray.train

    from bakeoff.frameworks.torch.distributed import run_rank

    context = ray.train.get_context()
    run_rank(config["request"], context.get_world_rank(), context.get_world_size(), context.get_local_rank())


def _keras_worker(config: dict[str, Any]) -> None:
    import ray.train

    dropped = os.environ.pop(LEGACY_KERAS_ENV, None)
    from bakeoff.frameworks.keras.distributed import run_rank

    request = {**config["request"], "ray_env_dropped": [LEGACY_KERAS_ENV] if dropped is not None else []}
    run_rank(request, ray.train.get_context().get_world_rank())


def trainer(request: dict[str, Any]) -> Any:
    """TorchTrainer or TensorflowTrainer for the case: `workers` actors of `threads` CPUs each, no retry,
    Ray's run files under the case's directory."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig

    cuda = request["options"]["device"] == "cuda"
    scaling = ScalingConfig(
        num_workers=request["workers"], use_gpu=cuda, resources_per_worker={"CPU": request["threads"]}
    )
    run = RunConfig(
        name=str(request.get("case", "bakeoff")).replace("/", "_").replace("=", ""),
        storage_path=str(Path(request["out_dir"]).parent / "ray_results"),
        failure_config=FailureConfig(max_failures=0),
    )
    config = {"request": request}
    if request["launcher"] == "ray-torch":
        from ray.train.torch import TorchConfig, TorchTrainer

        torch_config = TorchConfig(
            backend="nccl" if cuda else "gloo", timeout_s=int(request["collective_timeout"])
        )
        return TorchTrainer(
            _torch_worker,
            train_loop_config=config,
            torch_config=torch_config,
            scaling_config=scaling,
            run_config=run,
        )
    from ray.train.tensorflow import TensorflowTrainer

    return TensorflowTrainer(_keras_worker, train_loop_config=config, scaling_config=scaling, run_config=run)


def main(argv: list[str]) -> int:
    from bakeoff import ray_cluster

    request = json.loads(Path(argv[0]).read_text())
    ray_cluster.before_import(request.get("ray_address"))
    import ray

    try:
        ray_cluster.init(
            request.get("ray_address"),
            request["ray_temp_dir"],
            num_cpus=request["workers"] * request["threads"],
            log_to_driver=True,
            env_vars={"PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        )
        print(f"bakeoff: ray {ray.__version__} up, {ray.cluster_resources()}", flush=True)
        trainer(request).fit()
    except Exception as exc:
        # Ranks that wrote nothing (the trainer failed before or around them) get the driver's error.
        out = Path(request["out_dir"])
        for rank in range(request["workers"]):
            if not (out / f"rank{rank}.json").exists():
                write_rank_error(
                    request, rank, f"Ray Train: {type(exc).__name__}: {exc}", traceback.format_exc()
                )
        return 3
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    # Through the importable module, so Ray pickles the worker functions by name, not by value.
    from bakeoff.stages.distributed.ray_train import main as main_of_module

    sys.exit(main_of_module(sys.argv[1:]))
