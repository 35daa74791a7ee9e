"""A run's options (run.json's "options") from the settings a user chose, for `bakeoff run` and
`bakeoff.run` alike; each stage's `options_for` says what its settings and `quick` mean. Stages are
imported only when the options are built, so `bakeoff --help` stays light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bakeoff.measure import DEFAULT_MARGIN

# What `bakeoff run` and `bakeoff distributed` start by default: the wrappers are an optional extra.
DEFAULT_LAUNCHERS = ("torchrun", "mwms", "mirrored")


@dataclass(frozen=True)
class RunSettings:
    """`None` for artifacts, runtimes and servers: every one."""

    quick: bool = False
    modes: tuple[str, ...] = ("torch-eager", "torch-compile", "keras-eager", "keras-graph", "keras-xla")
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    device: str = "cpu"
    data: str | None = None
    compile_mode: str = "default"
    atol: float = 1e-5
    grad_atol: float = 1e-4
    batch: int = 8
    artifacts: tuple[str, ...] | None = None
    runtimes: tuple[str, ...] | None = None
    batch_sizes: tuple[int, ...] = (1, 8, 64, 256)
    servers: tuple[str, ...] | None = None
    slo_ms: float = 50.0
    duration: float | None = None
    tfserving_bin: str | None = None
    ray_address: str | None = None
    seed: int = 0
    threads: int | None = None
    margin: float = DEFAULT_MARGIN


def run_options(s: RunSettings) -> dict[str, Any]:
    from bakeoff.stages.distributed.stage import options_for as distributed_options
    from bakeoff.stages.export.stage import options_for as export_options
    from bakeoff.stages.infer.stage import options_for as infer_options
    from bakeoff.stages.serve.stage import options_for as serve_options
    from bakeoff.stages.train.stage import options_for as train_options

    def listed(names: tuple[str, ...] | None) -> list[str] | None:
        return None if names is None else list(names)

    train = (list(s.modes), s.epochs, s.batch_size, s.lr, s.device, s.data, s.compile_mode, s.quick)
    return {
        "threads": s.threads,
        "seed": s.seed,
        "parity": {"atol": s.atol, "grad_atol": s.grad_atol, "batch": s.batch},
        "train": train_options(*train),
        "export": export_options(listed(s.artifacts), s.epochs, s.batch_size, s.lr, s.data, 18, s.quick),
        "infer": infer_options(listed(s.runtimes), list(s.batch_sizes), s.quick),
        "serve": serve_options(
            listed(s.servers), s.slo_ms, s.duration, s.quick, s.tfserving_bin, s.ray_address
        ),
        "distributed": distributed_options(
            list(DEFAULT_LAUNCHERS),
            [1, 2],
            ["strong"],
            [],
            0,
            s.epochs,
            s.batch_size,
            s.lr,
            s.device,
            s.data,
            s.quick,
            ray_address=s.ray_address,
        ),
        "quick": s.quick,
        "margin": s.margin,
    }
