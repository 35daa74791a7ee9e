"""Training bake-off: every training mode of both frameworks on the same data, weights and order.

The parent (this module's `run_training`) prepares one data set, one canonical weight set and one
per-epoch order, then runs each framework's modes in that framework's own worker, one mode after the
other, and turns what comes back into records. The worker side (`Setup`, `case_loop`) is shared by
`frameworks/torch/train.py` and `frameworks/keras/train.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data.datasets import Dataset, epoch_orders
from bakeoff.data.datasets import load as load_dataset
from bakeoff.errors import UsageError, check_choices
from bakeoff.measure.env import gpus, physical_cores
from bakeoff.measure.isolation import WorkerResult, run_cases
from bakeoff.measure.timer import Sync, measure
from bakeoff.npz import load_arrays, save_arrays
from bakeoff.results.store import make_record
from bakeoff.spec.flops import count_flops
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.twins import Weights, canonical_weights, load_weights, save_weights

# mode -> (framework, how it runs)
MODES: dict[str, tuple[str, str]] = {
    "torch-eager": ("torch", "eager"),
    "torch-compile": ("torch", "compile"),
    "keras-eager": ("keras", "eager"),
    "keras-graph": ("keras", "graph"),
    "keras-xla": ("keras", "xla"),
}
MODE_HELP = {
    "torch-eager": "plain PyTorch training loop",
    "torch-compile": "the same loop with torch.compile(model) (see --compile-mode)",
    "keras-eager": "Keras fit with run_eagerly=True",
    "keras-graph": "Keras fit compiled to a tf.function (its default)",
    "keras-xla": "Keras fit with jit_compile=True (XLA)",
}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# Both frameworks get this explicitly: torch's Adam defaults to 1e-8, Keras' to 1e-7.
ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
PEAK_CASE = "peak"
PEAK_SIZE = 1024


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"
    compile_mode: str = "default"
    data: str | None = None  # 'mnist', 'synthetic', a .npz path, or None to pick by the spec
    case_timeout: float = 600.0
    peak_seconds: float = 1.0  # time budget of the matmul-peak probe
    # Train on the first this many samples of the (seeded, shuffled) training split; None: all of it.
    # --quick sets it, so an epoch is a few dozen steps; validation always uses the whole split.
    train_samples: int | None = None

    @property
    def thread_count(self) -> int:
        return self.threads or physical_cores()

    def settings(self, dataset: Dataset) -> dict[str, Any]:
        return {
            **asdict(self),
            "threads": self.thread_count,
            "optimizer": {
                "name": "adam",
                "learning_rate": self.lr,
                **ADAM,
                "weight_decay": 0.0,
                "note": "Keras adds epsilon to sqrt(v) before bias correction, torch after: the same "
                "value weighs ~1/sqrt(1-beta_2^t) more in Keras over the first steps",
            },
            "precision": "fp32",
            "tf32": False,
            "data": dataset.describe(),
            "order": "same per-epoch permutation for every mode; last partial batch dropped",
            "host_device_copies": "excluded on CPU; torch keeps the data set on the device and slices it, "
            "Keras fit iterates its own in-memory tf.data over host arrays (on a GPU that includes a "
            "host-to-device copy per batch)",
            "time_to_accuracy": "sum of training step times up to the first epoch whose validation "
            "accuracy reaches the target (compile included, evaluation excluded; epoch granularity)",
            "ratio_ci": "moving-block bootstrap (blocks of n^(1/3) consecutive steps) over one run of "
            "each mode: the modes ran one after another, not interleaved",
        }


def check_modes(modes: list[str]) -> list[str]:
    return check_choices("--modes", "mode", modes, MODES)


def check_options(graph: Graph, options: TrainOptions, dataset: Dataset) -> None:
    if options.compile_mode not in COMPILE_MODES:
        raise UsageError(f"--compile-mode: '{options.compile_mode}' is not one of {', '.join(COMPILE_MODES)}")
    if options.device not in ("cpu", "cuda"):
        raise UsageError(f"--device: '{options.device}' is not one of cpu, cuda")
    if options.device == "cuda" and not gpus():
        raise UsageError(
            "--device cuda: this machine has no CUDA device (nvidia-smi finds none); use --device cpu"
        )
    if options.batch_size > dataset.n_train:
        raise UsageError(
            f"--batch-size {options.batch_size} is larger than the {dataset.n_train} training samples of "
            f"'{dataset.name}'"
        )
    if options.epochs < 1 or options.lr <= 0:
        raise UsageError("--epochs must be at least 1 and --lr positive")
    if options.train_samples is not None and options.train_samples < options.batch_size:
        raise UsageError(
            f"train_samples {options.train_samples} is smaller than one batch ({options.batch_size})"
        )


# ---------------------------------------------------------------- worker side


def matmul_peak(
    matmul: Callable[[], object], sync: Sync | None, n: int, seconds: float
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The framework's own fp32 matmul rate on n x n operands: the roofline utilisation is measured
    against. Each framework passes its matmul and the sync that finishes its device work."""
    m = measure(matmul, sync=sync, min_time=min(0.3, seconds), max_time=seconds)
    return {"times": np.array(m.times)}, {
        "gflops": 2 * n**3 / m.stats.median / 1e9,
        "n": n,
        "stats": m.stats.to_dict(),
    }


@dataclass
class Setup:
    """What a training worker reads from its request: the same for every framework."""

    graph: Graph
    weights: Weights
    data: dict[str, np.ndarray]
    orders: np.ndarray
    options: TrainOptions

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> Setup:
        graph = build_graph(ModelSpec.model_validate(request["spec"]))
        data = load_arrays(request["data"])
        orders = data.pop("orders")
        return cls(
            graph, load_weights(Path(request["weights"])), data, orders, TrainOptions(**request["options"])
        )

    def inputs(self, split: str) -> list[np.ndarray]:
        return [self.data[f"x_{split}/{i}"] for i in range(len(self.graph.inputs))]

    @property
    def batches_per_epoch(self) -> int:
        return self.orders.shape[1] // self.options.batch_size

    def epoch_indices(self, epoch: int) -> np.ndarray:
        return self.orders[epoch][: self.batches_per_epoch * self.options.batch_size]


def accuracy(outputs: np.ndarray, labels: np.ndarray, task: str) -> float:
    """Top-1 accuracy for classification; for regression the negated MSE, so higher is better."""
    if task == "classification":
        return float(np.mean(outputs.argmax(-1) == labels))
    return -float(np.mean((outputs.reshape(labels.shape) - labels) ** 2))


# ---------------------------------------------------------------- parent side


def prepare(graph: Graph, options: TrainOptions, dataset: Dataset, workdir: Path) -> dict[str, Any]:
    """Writes the shared inputs once; returns the request every framework's worker starts from."""
    workdir.mkdir(parents=True, exist_ok=True)
    orders = epoch_orders(dataset.n_train, options.epochs, options.seed)
    save_arrays(workdir / "data.npz", {**dataset.arrays(), "orders": orders})
    save_weights(canonical_weights(graph, options.seed), workdir / "weights.npz")
    return {
        "job": "train",
        "spec": graph.spec.model_dump(mode="json"),
        "data": str(workdir / "data.npz"),
        "weights": str(workdir / "weights.npz"),
        "options": asdict(options),
        "peak_size": PEAK_SIZE,
    }


def run_training(
    graph: Graph,
    modes: list[str],
    options: TrainOptions,
    workdir: Path,
    on_record: Callable[[dict[str, Any]], None],
    progress: Callable[[str], None],
    skip: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs `modes` (less those in `skip`, already finished), calling `on_record` as each case ends."""
    check_modes(modes)
    dataset = load_dataset(graph, options.data, options.seed)
    check_options(graph, options, dataset)
    dataset = dataset.head(options.train_samples)
    settings = options.settings(dataset)
    request = prepare(graph, options, dataset, workdir)
    records: list[dict[str, Any]] = []
    peaks: dict[str, float] = {}
    train_flops = 3 * count_flops(graph)  # forward + backward ~ 3x the forward pass

    def on_case(case: str, result: WorkerResult) -> None:
        framework = result.framework
        if case == PEAK_CASE:
            record = peak_record(framework, result)
            if result.ok:
                peaks[framework] = result.meta["gflops"]
        else:
            record = mode_record(case, result, settings, train_flops, peaks)
            progress(f"train: {case} {record['status']} {record['message']}".rstrip())
        records.append(record)
        on_record(record)

    for framework in ("torch", "keras"):
        cases = [m for m in modes if MODES[m][0] == framework and m not in (skip or set())]
        if not cases:
            continue
        progress(f"train: {framework} worker for {', '.join(cases)}")
        run_cases(
            {**request, "framework": framework},
            [PEAK_CASE, *cases],
            workdir,
            case_timeout=options.case_timeout,
            on_case=on_case,
        )
    return records


def peak_record(framework: str, result: WorkerResult) -> dict[str, Any]:
    if not result.ok:
        return make_record("train", PEAK_CASE, "failed", framework=framework, message=result.error)
    return make_record(
        "train",
        PEAK_CASE,
        "ok",
        framework=framework,
        message=f"{framework} fp32 matmul peak {result.meta['gflops']:.1f} GFLOP/s",
        metrics=result.meta,
        settings={"matmul": f"{PEAK_SIZE}x{PEAK_SIZE} fp32"},
    )


def mode_record(
    mode: str, result: WorkerResult, settings: dict[str, Any], train_flops: int, peaks: dict[str, float]
) -> dict[str, Any]:
    framework = MODES[mode][0]
    if not result.ok:
        return make_record(
            "train", mode, "failed", framework=framework, message=result.error, settings=settings
        )
    from bakeoff.measure.stats import summarize

    times = result.arrays["step_times"]
    batch = settings["batch_size"]
    steady = summarize(times[1:] if len(times) > 1 else times)  # step 1 holds compile/trace time
    throughput = summarize(batch / times[1:] if len(times) > 1 else batch / times)
    gflops = train_flops * throughput.median / 1e9
    peak = peaks.get(framework, 0.0)  # the framework's own measured limit
    metrics = {
        **result.meta,
        "first_step_s": float(times[0]),
        "step_s": steady.to_dict(),
        "samples_per_s": throughput.to_dict(),
        "step_times": times.tolist(),
        "step_losses": result.arrays["step_losses"].tolist(),
        "val_acc_per_epoch": result.arrays["val_acc"].tolist(),
        "train_seconds_per_epoch": result.arrays["epoch_seconds"].tolist(),
        "gflops": gflops,
        "peak_gflops": peak or None,
        "utilization": gflops / peak if peak else None,
    }
    message = (
        f"{throughput.median:,.0f} samples/s, val acc {result.meta['val_acc']:.3f}"
        if math.isfinite(result.meta["val_acc"])
        else ""
    )
    return make_record(
        "train", mode, "ok", framework=framework, message=message, metrics=metrics, settings=settings
    )


def summary_record(
    records: list[dict[str, Any]],
    target_fraction: float = 0.95,
    *,
    dropout: bool = False,
    task: str = "classification",
) -> dict[str, Any] | None:
    """Time to accuracy against one target for every mode, and the convergence check between eager
    PyTorch and eager Keras (same weights, data, order and optimizer)."""
    from bakeoff.measure.stats import ratio_ci

    done = {
        r["case"]: r for r in records if r["stage"] == "train" and r["case"] in MODES and r["status"] == "ok"
    }
    if not done:
        return None
    # A model that diverged has NaN accuracies, stored as null: they reach no target.
    accs = [a for r in done.values() for a in r["metrics"]["val_acc_per_epoch"] if a is not None]
    if not accs:
        return make_record("train", "summary", "failed", message="no mode produced a finite validation score")
    best = max(accs)
    target = target_fraction * best if best > 0 else best / target_fraction
    reached = {mode: time_to(r["metrics"], target) for mode, r in done.items()}
    metrics: dict[str, Any] = {"target_val_acc": target, "best_val_acc": best, "time_to_target_s": reached}
    if "torch-eager" in done and "keras-eager" in done:
        metrics["convergence"] = convergence(
            done["torch-eager"]["metrics"], done["keras-eager"]["metrics"], dropout=dropout, task=task
        )
    fastest = min(done, key=lambda m: done[m]["metrics"]["step_s"]["median"])
    metrics["fastest"] = fastest
    metrics["vs_fastest"] = {
        mode: ratio_ci(
            r["metrics"]["step_times"][1:], done[fastest]["metrics"]["step_times"][1:], block=None
        ).to_dict()
        for mode, r in done.items()
        if mode != fastest
    }
    status = "ok"
    message = f"fastest step: {fastest}; target val acc {target:.3f} (95% of best {best:.3f})"
    conv = metrics.get("convergence")
    if conv and not conv["ok"]:
        status, message = "failed", f"eager torch and eager Keras diverge: {conv['why']}"
    return make_record("train", "summary", status, message=message, metrics=metrics)


def time_to(metrics: dict[str, Any], target: float) -> float | None:
    elapsed = 0.0
    for acc, seconds in zip(metrics["val_acc_per_epoch"], metrics["train_seconds_per_epoch"], strict=True):
        elapsed += seconds
        if acc is not None and acc >= target:
            return elapsed
    return None


# fp32 sums in different orders differ by ~1e-7, and training amplifies that step after step (Adam's
# m/sqrt(v) turns tiny gradient differences into full-size updates): on lenet the eager curves are within
# 2e-4 after 5 steps, 7e-4 after 10, 3e-3 after 20. A wrong learning rate, beta, loss or weight mapping
# shows from the first steps, so the check covers the first 10.
CONVERGENCE_STEPS = 10
CONVERGENCE_LOSS_RTOL = 1e-3
CONVERGENCE_ACC_POINTS = 1.0


def convergence(
    torch_m: dict[str, Any], keras_m: dict[str, Any], *, dropout: bool = False, task: str = "classification"
) -> dict[str, Any]:
    """Eager loss curves agree over the first steps (relative difference) and final validation
    accuracies within one point: same weights, data, order and optimizer settings in both. With
    dropout the curves are not compared (its random draws differ between frameworks); for regression
    'points' are percent of the validation MSE."""
    n = 0 if dropout else min(CONVERGENCE_STEPS, len(torch_m["step_losses"]), len(keras_m["step_losses"]))
    a, b = np.array(torch_m["step_losses"][:n]), np.array(keras_m["step_losses"][:n])
    rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))) if n else float("nan")
    t_acc, k_acc = torch_m["val_acc"], keras_m["val_acc"]
    scale = 1.0 if task == "classification" or k_acc is None else max(abs(k_acc), 1e-12)
    acc_gap = 100 * abs(t_acc - k_acc) / scale if t_acc is not None and k_acc is not None else float("nan")
    why = []
    if n and not rel <= CONVERGENCE_LOSS_RTOL:
        why.append(
            f"loss over the first {n} steps differs by up to {rel:.2e} (relative; allowed "
            f"{CONVERGENCE_LOSS_RTOL:g})"
        )
    if not acc_gap <= CONVERGENCE_ACC_POINTS:
        why.append(
            f"final validation accuracy differs by {acc_gap:.2f} points (allowed {CONVERGENCE_ACC_POINTS:g})"
        )
    return {
        "steps": n,
        "max_rel_loss_diff": rel,
        "val_acc_gap_points": acc_gap,
        "ok": not why,
        "why": "; ".join(why),
    }
