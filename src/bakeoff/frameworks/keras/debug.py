"""Keras side of the debug stage: faults planted in a copy of the twin and trained with fit in each mode
(run eagerly, tf.function, XLA) under each TensorFlow/Keras tool; bakeoff's first-non-finite-layer finder;
and, run as a script, the pdb/print probe (`python -m bakeoff.frameworks.keras.debug probe REQUEST.json`).

The fault layers live in this file on purpose: they stand for the user's own model code, and a tool
"points at the source line" when what it shows names this file and the line marked `# fault-line`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.parity import configure, loss_fn
from bakeoff.frameworks.keras.train import StepTimer
from bakeoff.frameworks.keras.weights import load_weights
from bakeoff.measure.isolation import case_loop
from bakeoff.npz import load_arrays
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.stages.debug import shared
from bakeoff.stages.debug.shared import BATCH, FAULT_LAYER, Outcome
from bakeoff.stages.train.shared import MODES
from bakeoff.twins.canonical import Weights
from bakeoff.twins.canonical import load_weights as load_canonical

SOURCE = Path(__file__)


class ZeroVarianceNorm(keras.layers.Layer):
    """Normalizes over an axis of size 1 once armed: the variance is 0 and the output 0/0."""

    def build(self, input_shape: Any) -> None:
        self.armed = self.add_weight(shape=(), initializer="zeros", trainable=False, name="armed")

    def call(self, x: Any) -> Any:
        armed = tf.convert_to_tensor(self.armed)
        y = tf.expand_dims(x, -1)
        mean = tf.reduce_mean(y, -1)
        var = tf.reduce_mean(tf.square(y - tf.expand_dims(mean, -1)), -1)
        bad = (x - mean) / tf.sqrt(var + 1.0 - armed)  # fault-line: nan
        return x * (1.0 - armed) + armed * bad


class ExplodingGradient(keras.layers.Layer):
    """The identity forward; backward multiplies the gradient by `scale` (set each step)."""

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(), initializer="ones", trainable=False, name="scale")

    def call(self, x: Any) -> Any:
        scale = tf.convert_to_tensor(self.scale)

        @tf.custom_gradient
        def scaled(v: Any) -> Any:
            def grad(g: Any) -> Any:
                return g * scale  # fault-line: grad

            return tf.identity(v), grad

        return scaled(x)


class HardCodedBatch(keras.layers.Layer):
    def call(self, x: Any) -> Any:
        return tf.reshape(x, (BATCH, *x.shape[1:]))  # fault-line: shape


class Float64Constant(keras.layers.Layer):
    def call(self, x: Any) -> Any:
        return x + tf.constant(np.zeros(x.shape[-1]))  # fault-line: dtype


class AssertFinite(keras.layers.Layer):
    """The assert tool: tf.debugging.assert_all_finite on one layer's output."""

    def __init__(self, checked: str, **kwargs: Any) -> None:
        super().__init__(name=f"check_{checked}", **kwargs)
        self.checked = checked

    def call(self, x: Any) -> Any:
        return tf.debugging.assert_all_finite(x, f"non-finite output of layer {self.checked}")


FAULT_LAYERS: dict[str, Any] = {
    "nan": ZeroVarianceNorm,
    "grad": ExplodingGradient,
    "shape": HardCodedBatch,
    "dtype": Float64Constant,
}


def twin(
    graph: Graph, weights: Weights, fault: str | None, checks: bool = False, extra: Any = None
) -> keras.Model:
    """A copy of the twin with the fault's layer after its first layer (and, with `checks`, an
    AssertFinite after every layer); `extra` (a layer) goes after the first layer instead of a fault."""
    first = graph.nodes[0].name

    def after(name: str, tensor: Any) -> Any:
        if name == first:
            planted = extra if extra is not None else FAULT_LAYERS[str(fault)](name=FAULT_LAYER[str(fault)])
            tensor = planted(tensor)
            if checks:
                tensor = AssertFinite(planted.name)(tensor)
        if checks:
            tensor = AssertFinite(name)(tensor)
        return tensor

    keras.utils.set_random_seed(0)
    model = build(graph, after)
    load_weights(model, graph, weights)
    return model


def arm(layer: keras.layers.Layer, fault: str, step: int) -> None:
    if fault == "nan":
        layer.armed.assign(1.0 if step >= shared.FAULT_STEP else 0.0)
    elif fault == "grad":
        layer.scale.assign(np.float32(shared.gradient_scale(step)))


class Steps(keras.callbacks.Callback):
    """Arms the fault before each step and notes which step is running (and whether TerminateOnNaN,
    placed before this callback, stopped training after it)."""

    def __init__(self, layer: keras.layers.Layer | None, fault: str) -> None:
        super().__init__()
        self.layer, self.fault = layer, fault
        self.step = -1
        self.stopped_at: int | None = None

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.step = batch
        if self.layer is not None:
            arm(self.layer, self.fault, batch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.model.stop_training and self.stopped_at is None:
            self.stopped_at = batch


def _data(graph: Graph, data: dict[str, np.ndarray], fault: str) -> tuple[Any, np.ndarray]:
    n = shared.step_count(fault) * BATCH
    if fault == "shape":
        n = shared.FAULT_STEP * BATCH + BATCH // 2
    xs = [data[f"x/{i}"][:n] for i in range(len(graph.inputs))]
    return (xs[0] if len(xs) == 1 else xs), data["y"][:n]


@contextlib.contextmanager
def _tool(tool: str) -> Any:
    if tool == "check_numerics":
        tf.debugging.enable_check_numerics()
    if tool == "run_functions_eagerly":
        tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        if tool == "check_numerics":
            tf.debugging.disable_check_numerics()
        if tool == "run_functions_eagerly":
            tf.config.run_functions_eagerly(False)


def run_case(
    graph: Graph, weights: Weights, data: dict[str, np.ndarray], fault: str, tool: str, mode: str
) -> Outcome:
    how = MODES[mode][1]
    outcome = Outcome(extra={"layer_class": FAULT_LAYERS[fault].__name__})
    printed = io.StringIO()
    with _tool(tool), contextlib.redirect_stdout(printed):
        try:
            model = twin(graph, weights, fault, checks=tool == "assert")
        except Exception as exc:  # Keras runs a layer's call symbolically while it builds the model
            outcome.found, outcome.step = True, -1
            outcome.message = f"{type(exc).__name__}: {shared.first_line(str(exc))}"
            outcome.said, outcome.text = str(exc), traceback.format_exc()
            return outcome
        if tool == "bakeoff":
            return find_nonfinite(graph, model, fault, data)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-3),
            loss=loss_fn(graph.spec.task.loss_name, graph.ends_in_softmax),
            run_eagerly=how == "eager",
            jit_compile=how == "xla",
            steps_per_execution=1,
        )
        steps = Steps(model.get_layer(FAULT_LAYER[fault]), fault)
        timer = StepTimer()
        callbacks = [steps, timer]
        if tool == "terminate_on_nan":
            callbacks.insert(0, keras.callbacks.TerminateOnNaN())
        x, y = _data(graph, data, fault)
        try:
            model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        except Exception as exc:
            outcome.found, outcome.step = True, steps.step
            outcome.message = f"{type(exc).__name__}: {shared.first_line(str(exc))}"
            outcome.said, outcome.text = str(exc), traceback.format_exc()
    if steps.stopped_at is not None:
        outcome.found, outcome.step = True, steps.stopped_at
        outcome.message = shared.first_line(printed.getvalue()) or "training stopped"
    outcome.said += printed.getvalue()
    losses = timer.losses
    outcome.loss_nonfinite_step = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    outcome.clean_times = timer.times[1 : shared.fault_step(fault)]
    return outcome


def _call(layer: keras.layers.Layer, kind: str | None, args: list[Any]) -> Any:
    if kind in ("add", "concat"):
        return layer(args, training=True)
    if kind == "attention":
        return layer(args[0], args[0], training=True)
    return layer(args[0], training=True)


def find_nonfinite(graph: Graph, model: keras.Model, fault: str, data: dict[str, np.ndarray]) -> Outcome:
    """bakeoff's finder: replays the training steps eagerly, layer by layer, keeping every layer's output
    and its gradient, and stops at the first step where one is not finite, naming the layer."""
    planted = FAULT_LAYER[fault]
    wiring = shared.planted_wiring([(n.name, n.inputs) for n in graph.nodes], graph.nodes[0].name, planted)
    order = [name for name, _ in wiring]
    kinds = {n.name: n.type for n in graph.nodes}
    consumers = shared.consumers_of(wiring)
    layer = model.get_layer(planted)
    loss_object = loss_fn(graph.spec.task.loss_name, graph.ends_in_softmax)
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    x, y = _data(graph, data, fault)
    xs = x if isinstance(x, list) else [x]
    outcome = Outcome()
    for step in range(shared.step_count(fault)):
        arm(layer, fault, step)
        s = slice(step * BATCH, (step + 1) * BATCH)
        started = time.perf_counter()
        with tf.GradientTape() as tape:
            values = {i.name: tf.constant(x_[s]) for i, x_ in zip(graph.inputs, xs, strict=True)}
            for name, sources in wiring:
                values[name] = _call(model.get_layer(name), kinds.get(name), [values[src] for src in sources])
                tape.watch(values[name])
            loss = loss_object(y[s], values[order[-1]])
        grads = tape.gradient(loss, [values[n] for n in order] + list(model.trainable_variables))
        activation_ok = {n: bool(tf.reduce_all(tf.math.is_finite(values[n]))) for n in order}
        gradient_ok = {
            n: None if g is None else bool(tf.reduce_all(tf.math.is_finite(g)))
            for n, g in zip(order, grads, strict=False)
        }
        found = shared.first_nonfinite(order, activation_ok, gradient_ok, consumers)
        if found is None and not math.isfinite(float(loss)):
            found = ("the loss", "activation")
        if found:
            where, kind = found
            outcome.found, outcome.step = True, step
            outcome.message = f"first non-finite {kind} at step {step}: layer {where}"
            outcome.said = outcome.message
            outcome.extra = {"finder_layer": where, "finder_kind": kind}
            return outcome
        optimizer.apply(grads[len(order) :], model.trainable_variables)
        if 0 < step < shared.fault_step(fault):
            outcome.clean_times.append(time.perf_counter() - started)
    return outcome


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The worker job: the requested 'fault/tool/mode' cases of this framework, each published as it
    finishes (a case that hangs costs only itself)."""
    meta = configure(request["threads"])
    graph = build_graph(ModelSpec.model_validate(request["spec"]))
    weights = load_canonical(Path(request["weights"]))
    data = load_arrays(request["data"])

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        fault, tool, mode = case.split("/")
        outcome = run_case(graph, weights, data, fault, tool, mode)
        return {}, {**meta, **shared.read_outcome(outcome, fault, SOURCE, shared.fault_step(fault))}

    # Untimed: the first case in a fresh process would carry its lazy initialisation in its step times.
    run_case(graph, weights, data, "nan", "none", "keras-eager")
    return case_loop(request, run_one)


# ---------------------------------------------------------------- the pdb/print probe (a script)


class Probe(keras.layers.Layer):
    """A print() and a breakpoint() inside call, as a user puts them there."""

    def call(self, x: Any) -> Any:
        print("@@PRINT", flush=True)
        breakpoint()
        return x


def probe(request: dict[str, Any]) -> None:
    """Builds and trains a copy of the twin with Probe after its first layer for `steps` steps in each
    Keras mode; '@@MODE name/build' and '@@MODE name' lines start each part of the output."""
    configure(request["threads"])
    graph = build_graph(ModelSpec.model_validate(request["spec"]))
    data = load_arrays(request["data"])
    weights = load_canonical(Path(request["weights"]))
    n = request["steps"] * BATCH
    xs = [data[f"x/{i}"][:n] for i in range(len(graph.inputs))]
    for mode in request["modes"]:
        how = MODES[mode][1]
        print(f"@@MODE {mode}/build", flush=True)
        model = twin(graph, weights, None, extra=Probe(name="probe"))
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-3),
            loss=loss_fn(graph.spec.task.loss_name, graph.ends_in_softmax),
            run_eagerly=how == "eager",
            jit_compile=how == "xla",
        )
        print(f"@@MODE {mode}", flush=True)
        model.fit(
            xs[0] if len(xs) == 1 else xs, data["y"][:n], batch_size=BATCH, epochs=1, shuffle=False, verbose=0
        )
        print(f"@@END {mode}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        probe(json.loads(Path(sys.argv[2]).read_text()))
