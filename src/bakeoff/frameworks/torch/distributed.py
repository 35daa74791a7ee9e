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
from collections.abc import Callable
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
    # Under Ray Train the process group is Ray's (set up before this runs, torn down after).
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=request["collective_timeout"]))
    backend = str(dist.get_backend())
    opts, graph = setup.options, setup.graph
    torch.manual_seed(opts.seed)
    model = build(graph)
    load_weights(model, graph, setup.weights)
    model.to(device).train()
    x_train, y_train = _train_data(setup, device)
    loops = {
        "torchrun": _ddp_loop,
        "accelerate": _accelerate_loop,
        "lightning": _lightning_loop,
        "ray-torch": _ray_loop,
    }
    times, losses, first_end = loops[request["launcher"]](setup, model, device, x_train, y_train, rank, world)
    allreduce = _allreduce_times(model, device)
    # Each rank's loss is its own slice's mean; their mean is the global batch's (equal slices). Summed
    # once after training, so every rank on every node holds the global curve.
    global_losses = torch.stack(losses)
    dist.all_reduce(global_losses)
    global_losses /= world
    val = evaluate(model, [x.to(device) for x in _val(setup)], setup.data["y_val"], graph.spec.task.type)
    if owned:
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
        "first_step_end_wall": first_end,
        "wrapper": request["launcher"],
        # Where the process group met (torchrun's or Ray's MASTER_ADDR): 127.0.0.1 on one machine.
        "addresses": [f"{os.environ.get('MASTER_ADDR', '')}:{os.environ.get('MASTER_PORT', '')}"],
        "val_acc": val,
        "pid": os.getpid(),
        **threads,
    }
    if world == 1 and request.get("ulp_probe"):
        arrays["ulp_step_losses"] = ulp_losses(setup, device, arrays["step_losses"])
    write_rank(request, rank, arrays, meta)


# Step times, each step's loss, and the wall-clock end of the first step (launch to first step).
Loop = tuple[list[float], list[torch.Tensor], float]


def _batches(setup: Setup, x_train: list[torch.Tensor], y_train: torch.Tensor, rank: int, world: int) -> Any:
    """This rank's slice of every global batch, epoch after epoch, in the shared order."""
    batch = setup.options.batch_size
    for epoch in range(setup.options.epochs):
        xs, ys = _epoch(setup, x_train, y_train, epoch)
        for b in range(setup.batches_per_epoch):
            s = rank_slice(b, rank, world, batch)
            yield [x[s] for x in xs], ys[s]


def _ddp_loop(
    setup: Setup,
    model: torch.nn.Module,
    device: torch.device,
    x_train: list[torch.Tensor],
    y_train: torch.Tensor,
    rank: int,
    world: int,
) -> Loop:
    """The training stage's loop with the model wrapped in DistributedDataParallel."""
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_step = make_step(model, ddp, setup.graph, setup.options.lr)
    batches = list(_batches(setup, x_train, y_train, rank, world))
    return _timed(lambda b: train_step(*batches[b]), len(batches), device)


def _timed(step: Callable[[int], torch.Tensor], steps: int, device: torch.device) -> Loop:
    """Times `steps` calls of `step` (batch index -> loss) as the training stage does, keeping each
    loss; the wall clock of the first step's end is the launch-to-first-step mark."""
    losses: list[torch.Tensor] = []

    def kept(b: int) -> torch.Tensor:
        loss = step(b)
        losses.append(loss.detach())
        return loss

    started = wall()
    times = time_loop(kept, steps, sync=_sync(device))
    return times, losses, started + times[0]


def _ray_loop(
    setup: Setup,
    model: torch.nn.Module,
    device: torch.device,
    x_train: list[torch.Tensor],
    y_train: torch.Tensor,
    rank: int,
    world: int,
) -> Loop:
    """Ray Train's way: `ray.train.torch.prepare_model` wraps the model in DistributedDataParallel (on
    the process group Ray set up); then the raw loop's steps."""
    from ray.train.torch import prepare_model

    wrapped = prepare_model(model, move_to_device=False)
    train_step = make_step(model, wrapped, setup.graph, setup.options.lr)
    batches = list(_batches(setup, x_train, y_train, rank, world))
    return _timed(lambda b: train_step(*batches[b]), len(batches), device)


def _accelerate_loop(
    setup: Setup,
    model: torch.nn.Module,
    device: torch.device,
    x_train: list[torch.Tensor],
    y_train: torch.Tensor,
    rank: int,
    world: int,
) -> Loop:
    """Hugging Face Accelerate: `prepare` wraps the model (DDP) and optimizer, `backward` replaces
    loss.backward(); the same batches and Adam rule as the raw loop."""
    from accelerate import Accelerator

    from bakeoff.frameworks.torch.parity import loss_fn
    from bakeoff.frameworks.torch.train import EpsilonHatAdam

    accelerator = Accelerator(cpu=device.type == "cpu")
    optimizer = EpsilonHatAdam(model.parameters(), setup.options.lr)
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    graph = setup.graph
    batches = list(_batches(setup, x_train, y_train, rank, world))

    def step(b: int) -> torch.Tensor:
        xs, y = batches[b]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(wrapped(*xs), y, graph.spec.task.loss_name, graph.ends_in_softmax)
        accelerator.backward(loss)
        optimizer.step()
        return loss

    return _timed(step, len(batches), device)


def _lightning_loop(
    setup: Setup,
    model: torch.nn.Module,
    device: torch.device,
    x_train: list[torch.Tensor],
    y_train: torch.Tensor,
    rank: int,
    world: int,
) -> Loop:
    """PyTorch Lightning: a LightningModule around the twin and `Trainer(strategy="ddp").fit`, fed this
    rank's slices in order (its own distributed sampler off). A step is timed from Lightning's batch
    start to its batch end hook."""
    import lightning as L

    from bakeoff.frameworks.torch.parity import loss_fn
    from bakeoff.frameworks.torch.train import EpsilonHatAdam

    graph = setup.graph
    batches = list(_batches(setup, x_train, y_train, rank, world))
    times: list[float] = []
    losses: list[torch.Tensor] = []
    first_end: list[float] = []

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def training_step(self, batch: Any, _index: int) -> torch.Tensor:
            xs, y = batch
            return loss_fn(self.net(*xs), y, graph.spec.task.loss_name, graph.ends_in_softmax)

        def configure_optimizers(self) -> Any:
            return EpsilonHatAdam(self.net.parameters(), setup.options.lr)

    class Timer(L.Callback):
        def on_train_batch_start(self, *_args: Any) -> None:
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, _trainer: Any, _module: Any, outputs: Any, *_args: Any) -> None:
            loss = outputs["loss"].detach()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - self.t0)
            losses.append(loss)
            if len(times) == 1:
                first_end.append(wall())

    nodes = world // int(os.environ.get("LOCAL_WORLD_SIZE", world))
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=world // nodes,
        num_nodes=nodes,
        strategy="ddp",
        max_epochs=1,
        use_distributed_sampler=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        callbacks=[Timer()],
    )
    loader: Any = torch.utils.data.DataLoader(batches, batch_size=None)  # type: ignore[arg-type]
    trainer.fit(Module(), train_dataloaders=loader)
    return times, losses, first_end[0]


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


def run_rank(request: dict[str, Any], rank: int, world: int, local_rank: int) -> int:
    """One rank, its failure written where its result would be; under torchrun or a Ray actor."""
    try:
        train(request, rank, world, local_rank)
    except Exception as exc:
        write_rank_error(request, rank, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return 3
    return 0


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return run_rank(request, rank, world, int(os.environ.get("LOCAL_RANK", "0")))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
