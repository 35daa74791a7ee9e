"""What the distributed stage's parent and its worker processes share: the launchers, how a global batch
is split across ranks, and how each rank hands its result back. Framework code imports this module,
never the stage's orchestration (`launch.py`, `scaling.py`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.npz import save_arrays
from bakeoff.stages.train.shared import Setup

# launcher -> (framework, api as the claims name it, what it is)
LAUNCHERS: dict[str, tuple[str, str, str]] = {
    "torchrun": ("torch", "torch.distributed", "torchrun + DistributedDataParallel, one process per worker"),
    "mwms": (
        "keras",
        "tf.distribute",
        "MultiWorkerMirroredStrategy, one process per worker, TF_CONFIG written by bakeoff",
    ),
    "mirrored": ("keras", "tf.distribute", "MirroredStrategy over one device per worker in one process"),
    # The wrappers the article says make multi-GPU training easy, against the raw loop under torchrun.
    "accelerate": ("torch", "accelerate", "Hugging Face Accelerate (prepare + backward) under torchrun"),
    "lightning": ("torch", "lightning", "PyTorch Lightning Trainer(strategy='ddp').fit under torchrun"),
    # Ray Train on a Ray cluster (one actor per worker): the same DDP loop and the same Keras fit under
    # MultiWorkerMirroredStrategy, with the process group / TF_CONFIG set up by Ray instead of bakeoff.
    "ray-torch": (
        "torch",
        "ray-train-torch",
        "Ray Train TorchTrainer (prepare_model: DistributedDataParallel), one Ray actor per worker",
    ),
    "ray-tf": (
        "keras",
        "ray-train-tf",
        "Ray Train TensorflowTrainer (Keras 3 fit under MultiWorkerMirroredStrategy, TF_CONFIG written by "
        "Ray), one Ray actor per worker",
    ),
}
# Launchers that wrap the raw torch loop: measured at one worker too (their overhead in one process).
WRAPPERS = ("accelerate", "lightning")
# Launchers that run on a Ray cluster (--ray-address, else a local one started for the case); `ray` on
# the command line names both.
RAY_LAUNCHERS = ("ray-torch", "ray-tf")
# Timed all-reduces of a buffer the size of the gradients, after training: the collective's own cost.
ALLREDUCE_REPEATS = 20


def rank_slice(step: int, rank: int, workers: int, global_batch: int) -> slice:
    """Rank r trains on the r-th of `workers` equal slices of global batch `step` (the same split
    tf.data's AutoShardPolicy.DATA makes of a batched dataset)."""
    local = global_batch // workers
    start = step * global_batch + rank * local
    return slice(start, start + local)


def check_split(global_batch: int, workers: int) -> None:
    if global_batch % workers:
        from bakeoff.errors import UsageError

        raise UsageError(
            f"--batch-size {global_batch} does not split evenly over {workers} workers: every worker must "
            "get as many samples"
        )


def epoch_labels(setup: Setup, epoch: int) -> np.ndarray:
    return setup.data["y_train"][setup.epoch_indices(epoch)]


def write_rank(
    request: dict[str, Any], rank: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Worker side: one rank's result, the .json renamed into place after its .npz is complete."""
    out = Path(request["out_dir"])
    save_arrays(out / f"rank{rank}.npz", arrays)
    tmp = out / f"rank{rank}.json.tmp"
    tmp.write_text(json.dumps({"ok": True, "meta": meta}))
    os.replace(tmp, out / f"rank{rank}.json")


def write_rank_error(request: dict[str, Any], rank: int, error: str, traceback_text: str = "") -> None:
    out = Path(request["out_dir"])
    tmp = out / f"rank{rank}.json.tmp"
    tmp.write_text(json.dumps({"ok": False, "error": error, "traceback": traceback_text}))
    os.replace(tmp, out / f"rank{rank}.json")


def wall() -> float:
    """Wall-clock seconds, comparable between processes on one machine (launch to first step)."""
    return time.time()
