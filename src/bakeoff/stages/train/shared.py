"""What the training stage's parent and its framework workers share: the modes, the optimizer settings,
the options every worker reads, and the framework-neutral worker helpers (`Setup`, `matmul_peak`,
`accuracy`). Framework code imports this module, never the stage's orchestration in `training.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data.datasets import Dataset
from bakeoff.measure.env import physical_cores
from bakeoff.measure.timer import Sync, measure
from bakeoff.npz import load_arrays
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import Dropout, ModelSpec
from bakeoff.twins.canonical import Weights, load_weights

# mode -> (framework, how it runs)
MODES: dict[str, tuple[str, str]] = {
    "torch-eager": ("torch", "eager"),
    "torch-compile": ("torch", "compile"),
    "keras-eager": ("keras", "eager"),
    "keras-graph": ("keras", "graph"),
    "keras-xla": ("keras", "xla"),
    # Keras 3 on the other backends: the same Keras twin and fit, in its own worker (opt-in: --backends).
    "keras-torch-eager": ("keras-torch", "eager"),
    "keras-torch-compile": ("keras-torch", "jit"),
    "keras-jax-eager": ("keras-jax", "eager"),
    "keras-jax-jit": ("keras-jax", "jit"),
}
# What `bakeoff run` and `bakeoff train` train unless told otherwise: the two frameworks' own modes.
DEFAULT_MODES = ("torch-eager", "torch-compile", "keras-eager", "keras-graph", "keras-xla")
MODE_HELP = {
    "torch-eager": "plain PyTorch training loop",
    "torch-compile": "the same loop with torch.compile(model) (see --compile-mode)",
    "keras-eager": "Keras fit with run_eagerly=True",
    "keras-graph": "Keras fit compiled to a tf.function (its default)",
    "keras-xla": "Keras fit with jit_compile=True (XLA)",
    "keras-torch-eager": "Keras fit with run_eagerly=True, KERAS_BACKEND=torch",
    "keras-torch-compile": "Keras fit with jit_compile=True, KERAS_BACKEND=torch (torch.compile)",
    "keras-jax-eager": "Keras fit with run_eagerly=True, KERAS_BACKEND=jax",
    "keras-jax-jit": "Keras fit with jit_compile=True, KERAS_BACKEND=jax (jax.jit; Keras' default on JAX)",
}


def backend_modes(backends: list[str]) -> list[str]:
    """The training modes of Keras on each of `backends` ('torch', 'jax'), as --backends adds them."""
    from bakeoff.frameworks import BACKEND_WORKERS

    workers = {BACKEND_WORKERS[b] for b in backends}
    return [mode for mode, (worker, _) in MODES.items() if worker in workers]


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# Both frameworks get this explicitly: torch's Adam defaults to 1e-8, Keras' to 1e-7.
ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
# Equal settings are not yet one optimizer: Keras and torch place epsilon differently. Both train with
# Keras' rule; torch gets it by resetting its lr and eps before each step, which makes its rule Keras'
# (frameworks/torch/train.py: EpsilonHatAdam).
ADAM_RULE = {
    "update_rule": "epsilon-hat (Keras' form) in both frameworks",
    "note": "m = beta_1*m + (1-beta_1)*g; v = beta_2*v + (1-beta_2)*g^2; "
    "alpha_t = learning_rate*sqrt(1-beta_2^t)/(1-beta_1^t), in float32 as Keras computes it; "
    "var -= alpha_t*m/(sqrt(v)+epsilon). keras.optimizers.Adam is this rule; torch.optim.Adam gets "
    "eps = epsilon/sqrt(1-beta_2^t) and lr = alpha_t*(1-beta_1^t)/sqrt(1-beta_2^t) before step t, which "
    "makes its own rule (and kernels) this one",
}
# How long loss curves can be compared step by step: torch-eager trains a second time, untimed, from
# starting weights each one ulp off (`Setup.nudged`) and stops at the first step whose loss moves by more
# than this (relative). Up to that step fp32 rounding alone cannot move a curve by more than a tenth of
# the convergence check's tolerance (CONVERGENCE_LOSS_RTOL in training.py); past it, it can.
FP32_DRIFT_RTOL = 1e-5
# A model with dropout cannot hold its curves to the other framework's (each draws its own masks), nor
# its final accuracy after a short run (the masks move it by several points): both eager workers train
# it again, untimed, with every dropout rate 0 for this many steps, and those curves are compared.
DROPOUT_OFF_STEPS = 16
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
    # After training, the trained modes' steps are timed again in rounds of short blocks that take turns
    # between the workers (training.time_in_rounds): this many rounds, each block at least this long.
    # Eight, not five: a slow patch of the machine that falls on one mode's blocks of one round (3.4x
    # here once) is drawn three times or more in ~5% of the bootstrap's resamples of five rounds, and
    # that stretched a 2x win's CI to 0.47-1.57; of eight rounds, four or more draws in ~1%.
    timing_rounds: int = 8
    timing_block_s: float = 0.05

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
                **ADAM_RULE,
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
            "utilization": "achieved GFLOP/s (3x the forward FLOPs x samples/s) over the machine's "
            "ceiling: the best fp32 matmul probe of any framework here, measured before any mode",
            "step_timing": (
                f"after training, every trained mode's step timed again in {self.timing_rounds} rounds "
                f"in its worker: per round, {TIMING_BLOCKS} blocks of each mode (at least "
                f"{self.timing_block_s:g} s and {TIMING_MIN_STEPS} steps, the first step of each "
                "dropped) that take turns between the workers (A B B A), cycling over the first "
                f"epoch's first {TIMING_BATCHES} batches; the training run's own step times are kept "
                "beside them"
                if self.timing_rounds
                else "not timed again: the modes are compared on their training runs"
            ),
            "ratio_ci": "between modes timed in rounds: bootstrap over the rounds (paired: the modes "
            "took turns), then steps; otherwise over up to 5 contiguous segments of each mode's steady "
            "training steps, which see drift inside the run and not between runs",
        }


# ---------------------------------------------------------------- worker side

# A trained mode's step, kept in its worker for the timing rounds that follow the training (the same
# compiled model, so timing it costs no second compile): mode -> run k more steps, return their times.
Stepper = Callable[[int], list[float]]
KEPT: dict[str, Stepper] = {}
# A timing block starts with this many untimed steps: Keras' first step after a hold (or an epoch's
# new iterator) is not a steady step; both frameworks drop the same number.
BLOCK_WARMUP_STEPS = 1
# The timing rounds cycle over this many batches (a copy of that much data per mode, not of the data set).
TIMING_BATCHES = 64
# Blocks of each mode per timing round: the modes in turn, then in the reverse turn.
TIMING_BLOCKS = 2
TIMING_MIN_STEPS = 5
TIMING_MAX_STEPS = 500


def serve_timing(make: Callable[[str], Stepper]) -> None:
    """Worker side of the timing rounds (measure.conduct): "load" takes the mode's kept step, or makes
    one (`make`: the twin from the starting weights, compiled) when this worker did not train it; "steps"
    runs one block: at least `min_steps` steps and `min_time` seconds, at most `max_steps`."""
    from bakeoff.measure.conduct import serve_commands

    steppers: dict[str, Stepper] = {}

    def load(command: dict[str, Any]) -> dict[str, Any]:
        mode = command["mode"]
        kept = mode in KEPT
        steppers[mode] = KEPT.pop(mode) if kept else make(mode)
        steppers[mode](2)  # the first steps of a fresh twin hold its compile
        return {"kept": kept}

    def steps(command: dict[str, Any]) -> dict[str, Any]:
        run, times = steppers[command["mode"]], []
        chunk = command["min_steps"]
        while True:
            times += run(chunk + BLOCK_WARMUP_STEPS)[BLOCK_WARMUP_STEPS:]
            if sum(times) >= command["min_time"] or len(times) >= command["max_steps"]:
                return {"times": times}
            # Steps of the size seen so far, to reach min_time in one more call.
            left = (command["min_time"] - sum(times)) / (sum(times) / len(times))
            chunk = max(1, min(command["max_steps"] - len(times), math.ceil(left)))

    try:
        serve_commands({"load": load, "steps": steps})
    finally:
        forget_kept(steppers)


def forget_kept(more: dict[str, Stepper] | None = None) -> None:
    """Lets go of the kept steps (and `more`), ending those that hold a thread (Keras' PacedFit)."""
    for stepper in [*KEPT.values(), *(more or {}).values()]:
        close = getattr(stepper, "close", None)
        if close is not None:
            close()
    KEPT.clear()


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

    def timing_indices(self) -> np.ndarray:
        """The samples of the timing rounds' batches: the first epoch's first TIMING_BATCHES batches."""
        return self.epoch_indices(0)[: TIMING_BATCHES * self.options.batch_size]

    def nudged(self) -> Setup:
        """The same setup with every nonzero starting weight moved one ulp up or down (a seeded coin per
        weight): the smallest change fp32 can make, to see how far rounding alone moves a training run.
        Random signs matter: moving every weight the same way scales the network almost uniformly, which
        keeps every ReLU and max-pool decision and so hides how far rounding can move it."""
        rng = np.random.default_rng(self.options.seed)
        weights = {node: {k: _one_ulp(a, rng) for k, a in w.items()} for node, w in self.weights.items()}
        return replace(self, weights=weights)

    def without_dropout(self) -> Setup:
        """The same setup with every dropout rate 0: what the two frameworks must then compute alike."""
        spec = self.graph.spec
        layers = tuple(
            layer.model_copy(update={"rate": 0.0}) if isinstance(layer, Dropout) else layer
            for layer in spec.layers
        )
        return replace(self, graph=build_graph(spec.model_copy(update={"layers": layers})))


def _one_ulp(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not np.issubdtype(a.dtype, np.floating):
        return a
    towards = np.where(rng.random(a.shape) < 0.5, -np.inf, np.inf).astype(a.dtype)
    return np.where(a != 0, np.nextafter(a, towards), a)


def has_dropout(graph: Graph) -> bool:
    """Dropout draws its masks differently in each framework (and under torch.compile), so loss curves
    of such a model cannot be compared step by step."""
    return any(isinstance(n.layer, Dropout) and n.layer.rate > 0 for n in graph.nodes)


def accuracy(outputs: np.ndarray, labels: np.ndarray, task: str) -> float:
    """Top-1 accuracy for classification; for regression the negated MSE, so higher is better."""
    if task == "classification":
        return float(np.mean(outputs.argmax(-1) == labels))
    return -float(np.mean((outputs.reshape(labels.shape) - labels) ** 2))
