"""PyTorch training worker: the eager loop, the same loop under torch.compile, the matmul peak, and the
fp32 drift probe that tells the convergence check how long loss curves can be compared step by step."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch

from bakeoff.errors import BakeoffError
from bakeoff.frameworks.torch.build import build
from bakeoff.frameworks.torch.parity import configure, loss_fn, to_torch_input
from bakeoff.frameworks.torch.weights import load_weights
from bakeoff.measure.isolation import case_loop
from bakeoff.measure.timer import time_loop
from bakeoff.spec.graph import Graph
from bakeoff.stages.train.shared import (
    ADAM,
    DROPOUT_OFF_STEPS,
    FP32_DRIFT_RTOL,
    KEPT,
    MODES,
    PEAK_CASE,
    Setup,
    Stepper,
    accuracy,
    forget_kept,
    has_dropout,
    matmul_peak,
    serve_timing,
)


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    setup = Setup.from_request(request)
    configure(setup.options.thread_count)
    device = _device(setup.options.device)
    if request.get("timing"):
        data = _train_data(setup, device)
        serve_timing(lambda mode: stepper(setup, device, _twin(setup, MODES[mode][1], device)[1], data))
        return {}, {}
    forget_kept()

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if case == PEAK_CASE:
            return peak(device, request["peak_size"], setup.options.peak_seconds)
        return train(setup, MODES[case][1], device)

    return case_loop(request, run_one)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise BakeoffError("--device cuda: this torch build sees no CUDA device")
    return torch.device(name)


def _sync(device: torch.device) -> Any:
    # Device work must be finished before the clock is read (fairness rule 7); the CPU is synchronous.
    return (lambda _out: torch.cuda.synchronize()) if device.type == "cuda" else None


def peak(device: torch.device, n: int, seconds: float) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return matmul_peak(lambda: a @ b, _sync(device), n, seconds)


def _on_device(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    return [to_torch_input(x, fresh_nchw=False).to(device) for x in arrays]


def evaluate(model: torch.nn.Module, xs: list[torch.Tensor], y: np.ndarray, task: str) -> float:
    model.eval()
    with torch.no_grad():
        outs = [model(*[x[i : i + 1024] for x in xs]).cpu().numpy() for i in range(0, len(y), 1024)]
    model.train()
    return accuracy(np.concatenate(outs), y, task)


class EpsilonHatAdam(torch.optim.Adam):
    """torch.optim.Adam that takes Keras' update rule (ADAM_RULE), so both twins train with one optimizer.

    torch steps by (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), with bc = 1 - beta^t; Keras by
    alpha_t * m / (sqrt(v) + epsilon). The two are one rule when, before step t, eps = epsilon / sqrt(bc2)
    and lr = alpha_t * bc1 / sqrt(bc2): this class sets both on every group, and torch's own Adam (its
    foreach or single-tensor kernels) does the rest, with no Python loop over parameters.

    alpha_t is computed as Keras computes it, in float32 (`keras_alpha`): 0.999 rounds up to 0.99900001
    there, which makes Keras' alpha_t ~6e-6 (relative) smaller than the exact value at every step. That
    is enough to move the loss curves apart by 1e-4 to 1e-3 over a few hundred steps, so it is copied.
    """

    # lr and eps of the first this many steps are worked out when the optimizer is made (~15 ms, before
    # any clock runs): inside a step, Keras' float32 alpha_t costs ~40 us (numpy scalar math on cold
    # caches), 2-3% of a 2 ms simplenet step. Steps after these work theirs out as they come.
    PRECOMPUTED_STEPS = 4096

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=(ADAM["beta_1"], ADAM["beta_2"]),
            eps=ADAM["epsilon"],
            weight_decay=0.0,
        )
        self.learning_rate, self.epsilon = lr, ADAM["epsilon"]
        # Steps taken. torch counts its own per parameter, but reading it back costs ~15 us a step; the
        # two agree as long as every step() follows a backward(), as in every training loop here.
        self.t = 0
        self._lr_eps = [self.lr_eps(t) for t in range(1, self.PRECOMPUTED_STEPS + 1)]
        # A step pre-hook, not an overridden step(): torch wraps each optimizer class's step in its
        # profiling hook, so an override runs that wrapper twice (~90 us more a step on a 2-core CPU).
        self.register_step_pre_hook(self._keras_rule)

    def reserve(self, steps: int) -> None:
        """Works out lr and eps of the next `steps` steps now, outside any clock (timing rounds can run
        past the PRECOMPUTED_STEPS of a long training run)."""
        want = self.t + steps
        self._lr_eps += [self.lr_eps(t) for t in range(len(self._lr_eps) + 1, want + 1)]

    def lr_eps(self, t: int) -> tuple[float, float]:
        """The lr and eps that make torch's step t Keras' step t."""
        beta_1, beta_2 = ADAM["beta_1"], ADAM["beta_2"]
        # torch's bias corrections, computed as torch computes them (Python floats).
        bc1, bc2_sqrt = 1 - beta_1**t, (1 - beta_2**t) ** 0.5
        return keras_alpha(self.learning_rate, beta_1, beta_2, t) * bc1 / bc2_sqrt, self.epsilon / bc2_sqrt

    def _keras_rule(self, _optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        self.t += 1
        lr, eps = self._lr_eps[self.t - 1] if self.t <= len(self._lr_eps) else self.lr_eps(self.t)
        for group in self.param_groups:
            group["lr"], group["eps"] = lr, eps


def keras_alpha(lr: float, beta_1: float, beta_2: float, t: int) -> float:
    """Keras Adam's step size lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), in float32 op for op as Keras
    computes it for float32 variables."""
    f = np.float32
    one, step = f(1), f(t)
    return float(f(lr) * np.sqrt(one - f(beta_2) ** step) / (one - f(beta_1) ** step))


class TrainStep:
    """One optimizer step on a batch, with Adam following Keras' rule (EpsilonHatAdam)."""

    def __init__(self, model: torch.nn.Module, forward: Any, graph: Graph, lr: float) -> None:
        self.optimizer = EpsilonHatAdam(model.parameters(), lr)
        self.forward = forward
        self.loss_name, self.probabilities = graph.spec.task.loss_name, graph.ends_in_softmax

    def __call__(self, xs: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self.forward(*xs), y, self.loss_name, self.probabilities)
        loss.backward()
        self.optimizer.step()
        return loss


def make_step(model: torch.nn.Module, forward: Any, graph: Graph, lr: float) -> TrainStep:
    return TrainStep(model, forward, graph, lr)


def train(setup: Setup, mode: str, device: torch.device) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    _, arrays, meta = fit(setup, mode, device, keep=True)
    if mode == "eager":
        if has_dropout(setup.graph):
            plain = setup.without_dropout()
            off = np.array(list(islice(_untimed_losses(plain, device), DROPOUT_OFF_STEPS)))
            arrays["dropout_off_step_losses"] = off
            arrays["ulp_step_losses"] = ulp_losses(plain, device, off)
        else:
            arrays["ulp_step_losses"] = ulp_losses(setup, device, arrays["step_losses"])
    return arrays, meta


Step = Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor]


def _twin(setup: Setup, mode: str, device: torch.device) -> tuple[torch.nn.Module, Step]:
    """The twin with the setup's starting weights, in training mode on `device`, and its optimizer step."""
    opts, graph = setup.options, setup.graph
    torch.manual_seed(opts.seed)
    model = build(graph)
    load_weights(model, graph, setup.weights)
    model.to(device).train()
    forward = torch.compile(model, mode=opts.compile_mode) if mode == "compile" else model
    return model, make_step(model, forward, graph, opts.lr)


def _train_data(setup: Setup, device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
    return _on_device(setup.inputs("train"), device), torch.from_numpy(setup.data["y_train"]).to(device)


def _epoch(
    setup: Setup, x_train: list[torch.Tensor], y_train: torch.Tensor, epoch: int
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The training data in this epoch's order (the same in every mode and framework)."""
    order = torch.from_numpy(setup.epoch_indices(epoch)).to(y_train.device)
    return [x[order] for x in x_train], y_train[order]


def fit(
    setup: Setup, mode: str, device: torch.device, keep: bool = False
) -> tuple[torch.nn.Module, dict[str, np.ndarray], dict[str, Any]]:
    """Trains a twin in `mode`; returns the trained model beside the step times and accuracies. `keep`:
    its step stays in this worker (shared.KEPT) for the timing rounds."""
    opts, graph = setup.options, setup.graph
    model, train_step = _twin(setup, mode, device)
    task = graph.spec.task
    (x_train, y_train), x_val = _train_data(setup, device), _on_device(setup.inputs("val"), device)
    batch = opts.batch_size

    times: list[float] = []
    losses: list[torch.Tensor] = []
    val_acc, epoch_seconds = [], []
    for epoch in range(opts.epochs):
        xs, ys = _epoch(setup, x_train, y_train, epoch)

        def step(b: int, xs: list[torch.Tensor] = xs, ys: torch.Tensor = ys) -> torch.Tensor:
            s = slice(b * batch, (b + 1) * batch)
            loss = train_step([x[s] for x in xs], ys[s])
            losses.append(loss.detach())
            return loss

        epoch_times = time_loop(step, setup.batches_per_epoch, sync=_sync(device))
        times += epoch_times
        epoch_seconds.append(sum(epoch_times))
        val_acc.append(evaluate(model, x_val, setup.data["y_val"], task.type))
    started = time.perf_counter()
    train_acc = evaluate(model, x_train, setup.data["y_train"], task.type)
    if keep:
        KEPT[f"torch-{mode}"] = stepper(setup, device, train_step, (x_train, y_train))
    arrays = {
        "step_times": np.array(times),
        "step_losses": torch.stack(losses).cpu().numpy().astype(np.float64),
        "val_acc": np.array(val_acc),
        "epoch_seconds": np.array(epoch_seconds),
    }
    meta = {
        "val_acc": val_acc[-1],
        "train_acc": train_acc,
        "device": str(device),
        "mode": mode,
        "eval_seconds": time.perf_counter() - started,
        "torch": torch.__version__,
    }
    return model, arrays, meta


def stepper(
    setup: Setup, device: torch.device, train_step: Step, data: tuple[list[torch.Tensor], torch.Tensor]
) -> Stepper:
    """Runs k more steps of `train_step` over the timing batches (shared.timing_indices), wrapping round."""
    order = torch.from_numpy(setup.timing_indices()).to(data[1].device)
    xs, ys = [x[order] for x in data[0]], data[1][order]
    batch, n, at = setup.options.batch_size, len(order) // setup.options.batch_size, [0]

    def step(i: int) -> torch.Tensor:
        b = (at[0] + i) % n
        return train_step([x[b * batch : (b + 1) * batch] for x in xs], ys[b * batch : (b + 1) * batch])

    def run(k: int) -> list[float]:
        if isinstance(train_step, TrainStep):
            train_step.optimizer.reserve(k)
        times = time_loop(step, k, sync=_sync(device))
        at[0] = (at[0] + k) % n
        return times

    return run


def _untimed_losses(setup: Setup, device: torch.device) -> Iterator[float]:
    """The eager run's losses, step by step, untimed (the caller stops when it has seen enough)."""
    _, train_step = _twin(setup, "eager", device)
    x_train, y_train = _train_data(setup, device)
    batch = setup.options.batch_size
    for epoch in range(setup.options.epochs):
        xs, ys = _epoch(setup, x_train, y_train, epoch)
        for b in range(setup.batches_per_epoch):
            s = slice(b * batch, (b + 1) * batch)
            yield train_step([x[s] for x in xs], ys[s]).item()


def ulp_losses(setup: Setup, device: torch.device, reference: np.ndarray) -> np.ndarray:
    """The eager run again, untimed, from starting weights each one ulp off (`Setup.nudged`), up to the first
    step whose loss moves by more than FP32_DRIFT_RTOL from `reference`, the unnudged run's losses: how
    many steps fp32 rounding alone leaves the loss curve in place. A model whose training amplifies
    rounding (a conv net: max-pool and ReLU decisions flip) stops within a few steps."""
    losses: list[float] = []
    for loss in _untimed_losses(setup.nudged(), device):
        if len(losses) == len(reference):
            break
        want = reference[len(losses)]
        losses.append(loss)
        if not abs(loss - want) <= FP32_DRIFT_RTOL * abs(want):
            break
    return np.array(losses)
