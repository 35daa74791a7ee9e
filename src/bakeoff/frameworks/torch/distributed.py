"""PyTorch distributed worker, one process per rank under torchrun: DistributedDataParallel (gloo on the
CPU, NCCL on GPUs) over the training stage's twin, data, order and Adam rule.

`python -m torch.distributed.run ... -m bakeoff.frameworks.torch.distributed REQUEST.json`. Each rank
trains on its slice of every global batch (`rank_slice`), DDP averages the gradients, and every rank
writes its step times and its own slice's losses; the parent averages those into the global loss.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from bakeoff.frameworks.torch.build import build
from bakeoff.frameworks.torch.parity import configure
from bakeoff.frameworks.torch.train import _epoch, _sync, _train_data, evaluate, make_step, ulp_losses
from bakeoff.frameworks.torch.weights import load_weights
from bakeoff.measure.timer import time_loop
from bakeoff.stages.distributed.shared import (
    ALLREDUCE_REPEATS,
    rank_slice,
    wall,
    write_rank,
    write_rank_error,
)
from bakeoff.stages.train.shared import Setup


def _device(kind: str, local_rank: int) -> tuple[torch.device, str]:
    if kind == "cuda":
        return torch.device("cuda", local_rank), "nccl"
    return torch.device("cpu"), "gloo"


def train(request: dict[str, Any], rank: int, world: int, local_rank: int) -> None:
    setup = Setup.from_request(request)
    threads = configure(request["threads"])
    device, backend = _device(setup.options.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=request["collective_timeout"]))
    opts, graph = setup.options, setup.graph
    torch.manual_seed(opts.seed)
    model = build(graph)
    load_weights(model, graph, setup.weights)
    model.to(device).train()
    ddp = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    train_step = make_step(model, ddp, graph, opts.lr)
    x_train, y_train = _train_data(setup, device)
    batch = opts.batch_size
    times: list[float] = []
    losses: list[torch.Tensor] = []
    started = wall()
    for epoch in range(opts.epochs):
        xs, ys = _epoch(setup, x_train, y_train, epoch)

        def step(b: int, xs: list[torch.Tensor] = xs, ys: torch.Tensor = ys) -> torch.Tensor:
            s = rank_slice(b, rank, world, batch)
            loss = train_step([x[s] for x in xs], ys[s])
            losses.append(loss.detach())
            return loss

        times += time_loop(step, setup.batches_per_epoch, sync=_sync(device))
    allreduce = _allreduce_times(model, device)
    # Each rank's loss is its own slice's mean; their mean is the global batch's (equal slices). Summed
    # once after training, so every rank on every node holds the global curve.
    global_losses = torch.stack(losses)
    dist.all_reduce(global_losses)
    global_losses /= world
    val = evaluate(model, [x.to(device) for x in _val(setup)], setup.data["y_val"], graph.spec.task.type)
    dist.destroy_process_group()
    arrays = {
        "step_times": np.array(times),
        "step_losses": global_losses.cpu().numpy().astype(np.float64),
        "rank_step_losses": torch.stack(losses).cpu().numpy().astype(np.float64),
        "allreduce_times": np.array(allreduce),
    }
    meta = {
        "rank": rank,
        "world": world,
        "backend": backend,
        "device": str(device),
        "first_step_end_wall": started + times[0],
        "val_acc": val,
        "pid": os.getpid(),
        **threads,
    }
    if world == 1 and request.get("ulp_probe"):
        arrays["ulp_step_losses"] = ulp_losses(setup, device, arrays["step_losses"])
    write_rank(request, rank, arrays, meta)


def _val(setup: Setup) -> list[torch.Tensor]:
    from bakeoff.frameworks.torch.parity import to_torch_input

    return [to_torch_input(x, fresh_nchw=False) for x in setup.inputs("val")]


def _allreduce_times(model: torch.nn.Module, device: torch.device) -> list[float]:
    """The collective alone: all-reduces of one buffer as large as all the gradients, after training
    (DDP overlaps its bucketed all-reduces with the backward pass, so inside a step they cannot be
    told apart from compute)."""
    buffer = torch.zeros(sum(p.numel() for p in model.parameters()), device=device)
    dist.barrier()
    times = []
    for _ in range(ALLREDUCE_REPEATS):
        t0 = time.perf_counter()
        dist.all_reduce(buffer)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    try:
        train(request, rank, world, local_rank)
    except Exception as exc:
        write_rank_error(request, rank, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
