"""The distributed stage: data-parallel training of the twins with torchrun + DDP, Keras under
MultiWorkerMirroredStrategy and under MirroredStrategy (and, asked for, Accelerate, Lightning and Ray
Train's two trainers), at 1..N workers; one record per case, then the scaling summary with the
correctness gate.

Opt-in on the CPU (`--stages ...,distributed`): on a few cores workers only share them. `bakeoff run`
adds it by itself when more than one GPU is found."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bakeoff.errors import UsageError
from bakeoff.measure.env import physical_cores
from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.stages.distributed.launch import Nodes
from bakeoff.stages.distributed.scaling import DistOptions, run_distributed, summary_record
from bakeoff.stages.distributed.scaling import check as check_options
from bakeoff.stages.distributed.shared import RAY_LAUNCHERS
from bakeoff.stages.train.shared import TrainOptions

# --quick: a dozen global batches, one epoch.
QUICK_STEPS = 12


def options_for(
    launchers: list[str],
    workers: list[int],
    scaling: list[str],
    nodes: list[str],
    node_rank: int,
    epochs: int,
    batch_size: int,
    lr: float,
    device: str,
    data: str | None,
    quick: bool,
    steps: int | None = None,
    threads: int | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """The stage's entry in a run's options (run.json), read back by `options_of`. `steps` caps the
    global batches per epoch (the first samples of the shuffled split), as --quick does. `threads` is per
    worker; None: the cores over the largest worker count (the run's --threads is a whole process's).
    `ray` among the launchers names both of Ray Train's (ray-torch, ray-tf)."""
    cap = QUICK_STEPS if quick and steps is None else steps
    return {
        "launchers": expand_launchers(launchers),
        "workers": workers,
        "scaling": scaling,
        "nodes": nodes,
        "node_rank": node_rank,
        "epochs": 1 if quick else epochs,
        "batch_size": batch_size,
        "lr": lr,
        "device": device,
        "data": data,
        "train_samples": cap * batch_size if cap else None,
        "threads": threads,
        "ray_address": ray_address,
    }


def expand_launchers(launchers: list[str]) -> list[str]:
    out: list[str] = []
    for launcher in launchers:
        for name in RAY_LAUNCHERS if launcher == "ray" else (launcher,):
            if name not in out:
                out.append(name)
    return out


def parse_nodes(text: str) -> list[str]:
    """--nodes host1:port,host2:port -> the list, each checked to be host:port."""
    hosts = [h.strip() for h in text.split(",") if h.strip()]
    for host in hosts:
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--nodes: '{host}' is not host:port (e.g. 127.0.0.1:29500)")
    return hosts


def options_of(options: dict[str, Any]) -> DistOptions:
    d = options["distributed"]
    train = TrainOptions(
        epochs=d["epochs"],
        batch_size=d["batch_size"],
        lr=d["lr"],
        seed=options["seed"],
        threads=d.get("threads"),
        device=d["device"],
        data=d["data"],
        train_samples=d["train_samples"],
    )
    return DistOptions(
        train=train,
        launchers=tuple(d["launchers"]),
        workers=tuple(d["workers"]),
        scaling=tuple(d["scaling"]),
        nodes=Nodes(tuple(d["nodes"]), d["node_rank"]),
        ray_address=d.get("ray_address"),
    )


def check(graph: Graph, options: dict[str, Any]) -> None:
    check_options(graph, options_of(options))


def run(ctx: RunContext) -> None:
    done = {case for stage, case, _ in ctx.done if stage == "distributed"}
    opts = options_of(ctx.options)
    with tempfile.TemporaryDirectory(prefix="bakeoff-distributed-") as tmp:
        run_distributed(ctx.graph, opts, Path(tmp), ctx.record, ctx.progress, skip=done)
    summary = summary_record(ctx.latest("distributed"), physical_cores())
    if summary:
        ctx.record(summary)
