"""The backends stage: does the Keras twin compute the same thing on every Keras 3 backend? One record
per backend ('tensorflow', 'torch', 'jax'): the parity check of `twins.parity` (outputs, every layer's
activations, loss and gradients, one batch, canonical weights) of Keras on that backend against the
PyTorch twin, plus its output's distance from Keras on TensorFlow's.

Each backend runs in its own worker (KERAS_BACKEND is read once, when keras is imported); the workers
stay in the pool, so the train and infer stages' Keras-on-PyTorch and Keras-on-JAX cases reuse them.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError, UsageError
from bakeoff.frameworks import BACKEND_NAMES, BACKEND_WORKERS, KERAS_BACKENDS
from bakeoff.measure.env import physical_cores
from bakeoff.results.store import make_record
from bakeoff.spec.flops import count_params
from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.twins import parity
from bakeoff.twins.canonical import canonical_weights

STAGE = "backends"
# The library each backend needs, and what to install when it is missing.
NEEDS = {"torch": ("torch", "torch==2.13.0"), "jax": ("jax", "'bakeoff[backends]' (jax[cpu])")}


def check_backends(backends: list[str]) -> list[str]:
    """--backends: 'torch', 'jax' or both; each one's library must be importable here."""
    for name in backends:
        if name not in BACKEND_WORKERS:
            raise UsageError(
                f"--backends: '{name}' is not one of {', '.join(BACKEND_WORKERS)} (Keras 3 on TensorFlow is "
                "always measured)"
            )
        module, install = NEEDS[name]
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"--backends {name}: {module} is not installed (pip install {install})")
    return list(dict.fromkeys(backends))


def options_for(backends: list[str]) -> dict[str, Any]:
    return {"backends": backends}


def _options(options: dict[str, Any]) -> parity.ParityOptions:
    return parity.ParityOptions(threads=options["threads"], seed=options["seed"], **options.get("parity", {}))


def check(graph: Graph, options: dict[str, Any]) -> None:
    check_backends(list(options.get(STAGE, {}).get("backends", [])))
    _options(options)


def workers(options: dict[str, Any]) -> list[str]:
    """The Keras workers compared: Keras on TensorFlow, then each backend asked for."""
    return ["keras", *(BACKEND_WORKERS[b] for b in options.get(STAGE, {}).get("backends", []))]


def run(ctx: RunContext) -> None:
    if ctx.done and ctx.finished(STAGE):
        return
    opts = _options(ctx.options)
    graph = ctx.graph
    weights = canonical_weights(graph, opts.seed)
    inputs, target = parity.make_batch(graph, opts.batch, opts.seed)
    threads = opts.threads or physical_cores()
    settings = {
        **opts.settings(graph.spec.task.loss_name),
        "reference": "the PyTorch twin's outputs, activations and gradients on the same batch and weights",
    }
    names = ["torch", *workers(ctx.options)]
    shown = ", ".join(KERAS_BACKENDS[w] for w in names[1:])
    ctx.progress(f"backends: the Keras twin on {shown}, a worker each")
    started = time.perf_counter()
    results = _collect(graph, names, weights, inputs, target, threads)
    seconds = time.perf_counter() - started
    torch = results["torch"]
    for worker in workers(ctx.options):
        record = backend_record(graph, worker, torch, results[worker], results.get("keras"), settings)
        record["seconds"] = seconds
        ctx.record(record)
        ctx.progress(f"backends: {record['case']} {record['status']} {record['message']}")


def _collect(
    graph: Graph, names: list[str], weights: Any, inputs: list[np.ndarray], target: np.ndarray, threads: int
) -> dict[str, Any]:
    """Every worker's parity arrays, side by side (nothing here is timed); when one fails, each is run
    alone so that only the failing ones carry the error."""
    with tempfile.TemporaryDirectory(prefix="bakeoff-backends-") as tmp:
        try:
            everyone = dict.fromkeys(names, weights)
            return dict(parity.collect(graph, everyone, inputs, target, threads, Path(tmp)))
        except BakeoffError:
            pass
        results: dict[str, Any] = {}
        for name in names:
            (Path(tmp) / name).mkdir()
            try:
                results[name] = parity.collect(
                    graph, {name: weights}, inputs, target, threads, Path(tmp) / name
                )[name]
            except BakeoffError as exc:
                results[name] = exc
        return results


def backend_record(
    graph: Graph, worker: str, torch: Any, keras: Any, tf_keras: Any, settings: dict[str, Any]
) -> dict[str, Any]:
    """One backend's record: parity against the PyTorch twin (and Keras on TensorFlow's output)."""
    backend = KERAS_BACKENDS[worker]
    for side, result in (("the PyTorch twin", torch), (BACKEND_NAMES[worker], keras)):
        if isinstance(result, Exception):
            return make_record(
                STAGE, backend, "failed", framework=worker, message=f"{side}: {result}", settings=settings
            )
    layers = [(n.name, n.name, n.type) for n in graph.nodes]
    key = f"act/{graph.output}"
    result = parity.compare(
        graph.spec.name, layers, key, torch, keras, settings, {"spec": count_params(graph)}
    )
    vs_tf = None
    if worker != "keras" and tf_keras is not None and not isinstance(tf_keras, Exception):
        vs_tf = float(np.max(np.abs(keras.arrays[key].astype(np.float64) - tf_keras.arrays[key])))
    worst = result.worst_gradient
    metrics = {
        "max_abs_diff": result.output_max_abs,
        "max_rel_diff": result.output_max_rel,
        "max_abs_diff_vs_tensorflow": vs_tf,
        "first_divergent": result.first_divergent,
        "loss": result.loss["keras"],
        "loss_abs_diff": result.loss_abs_diff,
        "grad_max_abs_diff": worst.max_abs if worst else 0.0,
        "layers": [vars(d) for d in result.layers],
        "versions": {k: v for k, v in keras.meta.items() if k != "params"},
        "worker": worker,
    }
    shown = f", {vs_tf:.1e} from Keras on TensorFlow" if vs_tf is not None else ""
    message = f"{BACKEND_NAMES[worker]}: {result.summary()} (against the PyTorch twin{shown})"
    return make_record(
        STAGE,
        backend,
        "ok" if result.passed else "failed",
        framework=worker,
        message=message,
        metrics=metrics,
        settings=settings,
    )
