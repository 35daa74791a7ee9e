"""Keras training worker: fit run eagerly, fit compiled (a tf.function on TensorFlow), fit with
jit_compile (XLA on TensorFlow and JAX, torch.compile on PyTorch), and the matmul peak. The same code
trains Keras on TensorFlow, PyTorch or JAX: the worker's KERAS_BACKEND decides (`backend.py`)."""

from __future__ import annotations

import threading
import time
from typing import Any

import keras
import numpy as np

from bakeoff.frameworks.keras import backend
from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.parity import configure, loss_fn
from bakeoff.frameworks.keras.weights import load_weights
from bakeoff.measure.isolation import case_loop
from bakeoff.spec.graph import Graph
from bakeoff.stages.train.shared import (
    ADAM,
    DROPOUT_OFF_STEPS,
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
from bakeoff.twins.canonical import Weights


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    setup = Setup.from_request(request)
    configure(setup.options.thread_count)
    if request.get("timing"):

        def make(mode: str) -> Stepper:
            model = compiled_model(setup.graph, setup.weights, setup.options.lr, MODES[mode][1])
            return stepper(setup, model)

        with backend.device(setup.options.device):
            serve_timing(make)
        return {}, {}
    forget_kept()

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        with backend.device(setup.options.device):
            if case == PEAK_CASE:
                return peak(request["peak_size"], setup.options.peak_seconds)
            return train(setup, MODES[case][1], keep_as=case)

    return case_loop(request, run_one)


def peak(n: int, seconds: float) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    matmul, sync = backend.matmul(n)
    return matmul_peak(matmul, sync, n, seconds)


class StepTimer(keras.callbacks.Callback):
    """Times each training step from the end of the one before (one hook per step keeps the harness
    light; the epoch's first step counts from its own start). Keras reports the epoch's running mean
    loss, so each step's own loss is recovered from consecutive means."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self.losses: list[float] = []
        self._last = 0.0
        self._mean = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._mean = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch == 0:  # after fit has made the epoch's iterator: that set-up is not a step
            self._last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        mean = float((logs or {})["loss"])  # materialises the step's result: fairness rule 7
        now = time.perf_counter()
        self.times.append(now - self._last)
        self._last = now
        k = batch + 1
        self.losses.append(k * mean - (k - 1) * self._mean)
        self._mean = mean


def evaluate(model: keras.Model, xs: list[np.ndarray], y: np.ndarray, task: str) -> float:
    """Calls the model eagerly in chunks of 1024, as the torch side does: `model.predict` would trace a
    predict function per mode (and compile one per input shape under XLA) for an untimed score."""
    outs = []
    for i in range(0, len(y), 1024):
        chunk = [x[i : i + 1024] for x in xs]
        outs.append(backend.to_numpy(model(chunk[0] if len(chunk) == 1 else chunk, training=False)))
    return accuracy(np.concatenate(outs), y, task)


def compiled_model(graph: Graph, weights: Weights, lr: float, mode: str) -> keras.Model:
    """The Keras twin with canonical weights, compiled for `mode` with Adam set as torch's (ADAM): 'eager'
    (run_eagerly), 'graph' (Keras' compiled default without jit_compile: a tf.function on TensorFlow),
    'xla' or 'jit' (jit_compile=True: XLA on TensorFlow and JAX, torch.compile on PyTorch)."""
    model = build(graph)
    load_weights(model, graph, weights)
    optimizer = keras.optimizers.Adam(
        learning_rate=lr, beta_1=ADAM["beta_1"], beta_2=ADAM["beta_2"], epsilon=ADAM["epsilon"]
    )
    # jit_compile is explicit: Keras' "auto" turns XLA on by itself when a GPU is present.
    model.compile(
        optimizer=optimizer,
        loss=loss_fn(graph.spec.task.loss_name, graph.ends_in_softmax),
        run_eagerly=mode == "eager",
        jit_compile=mode in ("xla", "jit"),
        steps_per_execution=1,
    )
    return model


class PacedFit(keras.callbacks.Callback):
    """The timing rounds' steps of one Keras mode: a single `fit` over the timing batches, run on a
    thread of its own and held between blocks inside its callback, so a block costs no `fit` call
    (each call builds its data pipeline: 0.2-0.3 s here) and no step pays for one. Step times are taken
    as StepTimer takes them, from one batch's end to the next; a block's first step (held, or first
    after an epoch's set-up) is dropped with the other side's (BLOCK_WARMUP_STEPS)."""

    def __init__(self, setup: Setup, model: keras.Model) -> None:
        super().__init__()
        order = setup.timing_indices()
        self._x = [x[order] for x in setup.inputs("train")]
        self._y = setup.data["y_train"][order]
        self._batch = setup.options.batch_size
        self._device = setup.options.device
        self._fit_model = model
        self._cond = threading.Condition()
        self._quota = 0
        self._stop = False
        self._times: list[float] = []
        self._last = 0.0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, k: int) -> list[float]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._fit, name="bakeoff-timing-fit", daemon=True)
            self._thread.start()
        with self._cond:
            start = len(self._times)
            self._quota = k
            self._cond.notify_all()
            while self._quota > 0 and self._error is None and self._thread.is_alive():
                self._cond.wait(0.1)
            if self._error is not None:
                raise self._error
            return self._times[start : start + k]

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _fit(self) -> None:
        try:
            xs = self._x
            with backend.device(self._device):  # a device scope is the thread's own
                self._fit_model.fit(
                    xs[0] if len(xs) == 1 else xs,
                    self._y,
                    batch_size=self._batch,
                    epochs=1_000_000,  # until close(): the callback stops it
                    shuffle=False,
                    verbose=0,
                    callbacks=[self],
                )
        except BaseException as exc:
            self._error = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        held = False
        with self._cond:
            while self._quota == 0 and not self._stop:
                held = True
                self._cond.wait()
            if self._stop:
                self._fit_model.stop_training = True
        # After fit has made the epoch's iterator, or after a hold: neither is a step.
        if batch == 0 or held:
            self._last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        float((logs or {})["loss"])  # materialises the step's result: fairness rule 7
        now = time.perf_counter()
        with self._cond:
            if self._quota > 0:
                self._times.append(now - self._last)
                self._quota -= 1
                if self._quota == 0:
                    self._cond.notify_all()
        self._last = now


def stepper(setup: Setup, model: keras.Model) -> Stepper:
    return PacedFit(setup, model)


def train(
    setup: Setup, mode: str, keep_as: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Trains the Keras twin in `mode`; `keep_as`: its fit stays in this worker (shared.KEPT) under that
    name for the timing rounds."""
    opts, graph = setup.options, setup.graph
    keras.utils.set_random_seed(opts.seed)
    model = compiled_model(graph, setup.weights, opts.lr, mode)
    x_train, y_train = setup.inputs("train"), setup.data["y_train"]
    timer = StepTimer()
    val_acc, epoch_seconds = [], []
    task = graph.spec.task.type
    for epoch in range(opts.epochs):
        order = setup.epoch_indices(epoch)
        xs = [x[order] for x in x_train]
        before = len(timer.times)
        model.fit(
            xs[0] if len(xs) == 1 else xs,
            y_train[order],
            batch_size=opts.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[timer],
        )
        epoch_seconds.append(sum(timer.times[before:]))
        val_acc.append(evaluate(model, setup.inputs("val"), setup.data["y_val"], task))
    started = time.perf_counter()
    train_acc = evaluate(model, x_train, y_train, task)
    if keep_as:
        KEPT[keep_as] = stepper(setup, model)
    arrays = {
        "step_times": np.array(timer.times),
        "step_losses": np.array(timer.losses),
        "val_acc": np.array(val_acc),
        "epoch_seconds": np.array(epoch_seconds),
    }
    if mode == "eager" and has_dropout(graph):
        arrays["dropout_off_step_losses"] = dropout_off_losses(setup)
    meta = {
        "val_acc": val_acc[-1],
        "train_acc": train_acc,
        "device": opts.device,
        "mode": mode,
        "eval_seconds": time.perf_counter() - started,
        **backend.versions(),
    }
    return arrays, meta


def dropout_off_losses(setup: Setup) -> np.ndarray:
    """The eager run again, untimed, with every dropout rate 0, for DROPOUT_OFF_STEPS steps: the curve the
    torch side's dropout-off run must match."""
    plain, opts = setup.without_dropout(), setup.options
    keras.utils.set_random_seed(opts.seed)
    model = compiled_model(plain.graph, plain.weights, opts.lr, "eager")
    order = plain.epoch_indices(0)[: DROPOUT_OFF_STEPS * opts.batch_size]
    xs = [x[order] for x in plain.inputs("train")]
    timer = StepTimer()
    model.fit(
        xs[0] if len(xs) == 1 else xs,
        plain.data["y_train"][order],
        batch_size=opts.batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[timer],
    )
    return np.array(timer.losses)
