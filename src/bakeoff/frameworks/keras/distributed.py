"""Keras distributed worker: Keras 3 `fit` under MultiWorkerMirroredStrategy (one process per worker,
the TF_CONFIG bakeoff wrote in its environment) or MirroredStrategy (one process, one device per worker:
logical CPU devices on the CPU, GPUs on a GPU machine), over the training stage's twin, data, order and
Adam rule.

`python -m bakeoff.frameworks.keras.distributed REQUEST.json RANK`. The data set is batched at the
global batch and auto-sharded by DATA, so replica r gets the r-th slice of every global batch, as torch
rank r does (`rank_slice`); the run checks that on the first batch and records it. Keras scales each
replica's loss by 1/replicas and sums the gradients: the mean, as DDP's average.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bakeoff.frameworks.keras import strategy_fixes
from bakeoff.frameworks.keras.parity import configure
from bakeoff.frameworks.keras.train import StepTimer, compiled_model, evaluate
from bakeoff.stages.distributed.shared import (
    ALLREDUCE_REPEATS,
    epoch_labels,
    rank_slice,
    wall,
    write_rank,
    write_rank_error,
)
from bakeoff.stages.train.shared import Setup


def _strategy(launcher: str, workers: int, device: str, threads: int, timeout: float) -> tuple[Any, dict]:
    """The strategy, made before TensorFlow initialises (logical devices and threads are set first)."""
    if launcher == "mirrored":
        if device == "cuda":
            gpus = tf.config.list_physical_devices("GPU")
            names = [f"/gpu:{i}" for i in range(min(workers, len(gpus)))]
        else:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(workers)]
            )
            names = [f"/cpu:{i}" for i in range(workers)]
        # One process holds every replica: its thread pools are the workers' threads together.
        info = configure(threads * workers)
        return tf.distribute.MirroredStrategy(devices=names), {**info, "devices": names}
    info = configure(threads)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.NCCL
        if device == "cuda"
        else tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=timeout,
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options), info


def train(request: dict[str, Any], rank: int) -> None:
    # Every launcher but MirroredStrategy's is MultiWorkerMirroredStrategy (mwms, Ray's TensorflowTrainer).
    launched_fixes = strategy_fixes.apply() if request["launcher"] != "mirrored" else []
    strategy, threads = _strategy(
        request["launcher"],
        request["workers"],
        request["options"]["device"],
        request["threads"],
        request["collective_timeout"],
    )
    setup = Setup.from_request(request)
    opts, graph = setup.options, setup.graph
    keras.utils.set_random_seed(opts.seed)
    with strategy.scope():
        model = compiled_model(graph, setup.weights, opts.lr, "graph")
    timer = FirstStepTimer()
    split_ok = True
    for epoch in range(opts.epochs):
        data = _dataset(setup, epoch)
        if epoch == 0:
            split_ok = _split_matches(strategy, data, setup, rank, request["workers"])
        model.fit(data, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    allreduce = _allreduce_times(strategy, sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    val = (
        evaluate(model, setup.inputs("val"), setup.data["y_val"], graph.spec.task.type) if rank == 0 else None
    )
    arrays = {
        "step_times": np.array(timer.times),
        "step_losses": np.array(timer.losses),
        "allreduce_times": np.array(allreduce),
    }
    meta = {
        "rank": rank,
        "world": request["workers"],
        "replicas": strategy.num_replicas_in_sync,
        "device": opts.device,
        "first_step_end_wall": timer.first_end_wall,
        "split_matches": split_ok,
        "keras_fixes": launched_fixes,
        # The workers' addresses in TF_CONFIG (bakeoff's or Ray's): 127.0.0.1 on one machine.
        "addresses": json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", []),
        "val_acc": val,
        "pid": os.getpid(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        **({"ray_env_dropped": request["ray_env_dropped"]} if "ray_env_dropped" in request else {}),
        **threads,
    }
    write_rank(request, rank, arrays, meta)


def _dataset(setup: Any, epoch: int) -> Any:
    """This epoch's order, batched at the global batch, sharded by DATA (each worker its slice)."""
    order = setup.epoch_indices(epoch)
    xs = [x[order] for x in setup.inputs("train")]
    data = tf.data.Dataset.from_tensor_slices(
        (xs[0] if len(xs) == 1 else tuple(xs), setup.data["y_train"][order])
    )
    data = data.batch(setup.options.batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def _split_matches(strategy: Any, data: Any, setup: Any, rank: int, workers: int) -> bool:
    """Whether this process's replicas get the slices of the first global batch torch's ranks get."""
    first = next(iter(strategy.experimental_distribute_dataset(data)))
    local = [np.asarray(y) for y in strategy.experimental_local_results(first[1])]
    want_y = epoch_labels(setup, 0)
    ranks = range(len(local)) if len(local) > 1 else [rank]
    return all(
        np.array_equal(y, want_y[rank_slice(0, r, workers, setup.options.batch_size)])
        for y, r in zip(local, ranks, strict=True)
    )


def _allreduce_times(strategy: Any, size: int) -> list[float]:
    """All-reduces of one buffer as large as all the gradients, alone, after training (inside `fit` the
    collective is fused into the step's graph and cannot be timed apart)."""

    @tf.function
    def allreduce() -> Any:
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("SUM", tf.zeros([size])))

    def once() -> float:
        t0 = time.perf_counter()
        out = allreduce()
        np.asarray(strategy.experimental_local_results(out)[0][:1])
        return time.perf_counter() - t0

    once()  # traces the function: not the collective's cost
    return [once() for _ in range(ALLREDUCE_REPEATS)]


class FirstStepTimer(StepTimer):
    """StepTimer that also notes the wall-clock end of the first step (launch to first step)."""

    first_end_wall: float | None = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_train_batch_end(batch, logs)
        if self.first_end_wall is None:
            self.first_end_wall = wall()


def run_rank(request: dict[str, Any], rank: int) -> int:
    """One worker, its failure written where its result would be; a process of its own or a Ray actor."""
    try:
        train(request, rank)
    except Exception as exc:
        write_rank_error(request, rank, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return 3
    return 0


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    return run_rank(request, int(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
