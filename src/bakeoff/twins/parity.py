"""Parity: do the twins compute the same thing? Outputs, every layer's activations, loss and gradients.

Each framework runs in its own worker; this module only sends the canonical weights and one batch,
and compares what comes back, in canonical (channels-last) layout.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import PairError, UsageError, WorkerError
from bakeoff.measure.env import physical_cores
from bakeoff.measure.isolation import WorkerResult, run_workers
from bakeoff.npz import save_arrays
from bakeoff.spec.flops import count_params
from bakeoff.spec.graph import Graph
from bakeoff.twins.byo import parse_ref
from bakeoff.twins.canonical import canonical_weights, save_weights


@dataclass(frozen=True)
class ParityOptions:
    """What a parity check may be asked to vary; everything else (fp32, TF32 off, CPU) is fixed."""

    atol: float = 1e-5  # activations and outputs; public tools use 1e-5 to 1e-4
    grad_atol: float = 1e-4  # gradients and loss
    batch: int = 8
    seed: int = 0
    threads: int | None = None  # None: the machine's physical cores, for every framework alike

    def __post_init__(self) -> None:
        for flag, value in (("--atol", self.atol), ("--grad-atol", self.grad_atol)):
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{flag} {value}: a tolerance is a finite number, 0 or more (e.g. 1e-5)")
        if self.batch < 1:
            raise UsageError(f"--batch {self.batch}: at least 1")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads {self.threads}: at least 1")

    @property
    def thread_count(self) -> int:
        return self.threads or physical_cores()

    def settings(self, loss: str) -> dict[str, Any]:
        """The settings a record carries, so a report can show exactly what was compared."""
        return {
            **asdict(self),
            "threads": self.thread_count,
            "precision": "fp32",
            "tf32": False,
            "device": "cpu",
            "loss": loss,
            "gradient_step": "training mode (batch norm uses batch statistics), dropout off",
        }


@dataclass
class Diff:
    """One compared tensor: an activation (`key` empty) or one canonical gradient array."""

    layer: str
    kind: str
    key: str
    shape: list[int]
    max_abs: float
    ok: bool


@dataclass
class ParityResult:
    model: str
    passed: bool
    output_max_abs: float
    output_max_rel: float
    first_divergent: str | None
    loss: dict[str, float]
    loss_abs_diff: float
    layers: list[Diff]
    gradients: list[Diff]
    params: dict[str, int]
    settings: dict[str, Any]
    frameworks: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    @property
    def worst_gradient(self) -> Diff | None:
        return max(self.gradients, key=lambda d: d.max_abs, default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.passed:
            worst = self.worst_gradient
            grad = f", max gradient diff {worst.max_abs:.2e}" if worst else ""
            return f"parity ok: max output diff {self.output_max_abs:.2e}{grad}"
        if self.first_divergent:
            return f"parity FAILED: first divergent layer '{self.first_divergent}'"
        bad = [f"{d.layer}.{d.key}" for d in self.gradients if not d.ok]
        return f"parity FAILED: gradients differ for {', '.join(bad[:3]) or 'the loss'}"


def make_batch(graph: Graph, batch: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """A synthetic batch shaped from the spec: normal floats, tokens inside the embedding's vocabulary."""
    rng = np.random.default_rng(seed + 1)
    inputs = []
    for spec in graph.inputs:
        if spec.dtype.startswith("int"):
            high = graph.int_ranges.get(spec.name, 2)
            inputs.append(rng.integers(0, high, (batch, *spec.shape)).astype(spec.dtype))
        else:
            inputs.append(rng.normal(size=(batch, *spec.shape)).astype(np.float32))
    task = graph.spec.task
    if task.type == "classification":
        target = rng.integers(0, task.num_classes or 2, batch).astype(np.int64)
    else:
        target = rng.normal(size=(batch, *graph.output_shape)).astype(np.float32)
    return inputs, target


def _run(requests: list[dict[str, Any]], workdir: Path) -> dict[str, WorkerResult]:
    # A user's own files get a process of their own: importing them could leave anything behind.
    results = run_workers(requests, workdir, fresh=any(r["job"] == "byo" for r in requests))
    for result in results:
        if not result.ok:
            # The user's own pair failing to load or match is a usage error; anything else is a failure.
            error = PairError if result.kind == "PairError" else WorkerError
            raise error(f"{result.framework}: {result.error}")
    return {r.framework: r for r in results}


def check(graph: Graph, options: ParityOptions | None = None) -> ParityResult:
    """Parity of a spec's twins, both loaded from one canonical weight set."""
    opts = options or ParityOptions()
    weights = canonical_weights(graph, opts.seed)
    inputs, target = make_batch(graph, opts.batch, opts.seed)
    with tempfile.TemporaryDirectory(prefix="bakeoff-parity-") as tmp:
        results = collect(
            graph, {"torch": weights, "keras": weights}, inputs, target, opts.thread_count, Path(tmp)
        )
    settings = opts.settings(graph.spec.task.loss_name)
    layers = [(n.name, n.name, n.type) for n in graph.nodes]
    params = {"spec": count_params(graph)}
    return compare(
        graph.spec.name, layers, f"act/{graph.output}", results["torch"], results["keras"], settings, params
    )


def collect(
    graph: Graph,
    weights_by_framework: dict[str, Any],
    inputs: list[np.ndarray],
    target: np.ndarray,
    threads: int,
    workdir: Path,
) -> dict[str, WorkerResult]:
    """Runs the parity job in one worker per framework, each with its own canonical weight set (a test
    may hand one framework a deliberately broken set)."""
    batch_path = workdir / "batch.npz"
    named = {f"input/{i.name}": x for i, x in zip(graph.inputs, inputs, strict=True)}
    save_arrays(batch_path, {"target": target, **named})
    requests = []
    for framework, weights in weights_by_framework.items():
        weights_path = workdir / f"weights-{framework}.npz"
        save_weights(weights, weights_path)
        requests.append(
            {
                "job": "parity",
                "framework": framework,
                "spec": graph.spec.model_dump(mode="json"),
                "weights": str(weights_path),
                "batch": str(batch_path),
                "threads": threads,
            }
        )
    return _run(requests, workdir)


def check_pair(
    torch_ref: str,
    keras_ref: str,
    input_shapes: list[tuple[int, ...]],
    options: ParityOptions | None = None,
) -> ParityResult:
    """Parity of a user's own pair: the torch model's weights are mapped into the Keras model by layer
    order and shape, then both are run on one batch (images channels-last here, NCHW for torch)."""
    parse_ref(torch_ref, "--torch")
    parse_ref(keras_ref, "--keras")
    opts = options or ParityOptions()
    rng = np.random.default_rng(opts.seed + 1)
    inputs = {
        f"input/{i:02d}": rng.normal(size=(opts.batch, *shape)).astype(np.float32)
        for i, shape in enumerate(input_shapes)
    }
    with tempfile.TemporaryDirectory(prefix="bakeoff-pair-") as tmp:
        workdir = Path(tmp)
        save_arrays(workdir / "batch.npz", inputs)
        common = {
            "job": "byo",
            "batch": str(workdir / "batch.npz"),
            "threads": opts.thread_count,
            "seed": opts.seed,
        }
        torch = _run([{**common, "framework": "torch", "ref": torch_ref}], workdir / "torch")["torch"]
        weights = {k: v for k, v in torch.arrays.items() if k.startswith("weight/")}
        save_arrays(workdir / "torch-weights.npz", weights)
        keras = _run(
            [
                {
                    **common,
                    "framework": "keras",
                    "ref": keras_ref,
                    "torch_weights": str(workdir / "torch-weights.npz"),
                    "torch_layers": json.dumps(torch.meta["layers"]),
                }
            ],
            workdir / "keras",
        )["keras"]
    described = zip(torch.meta["layers"], keras.meta["layers"], strict=True)
    layers = [(str(i), f"{t['name']} ↔ {k['name']}", t["kind"]) for i, (t, k) in enumerate(described)]
    settings = opts.settings("mse to a seeded random target")
    name = f"{torch_ref} ↔ {keras_ref}"
    return compare(name, layers, "output", torch, keras, settings, {})


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def _diff(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return float("nan")  # not comparable, e.g. a recurrent layer returning sequences on one side only
    return _max_abs(a, b) if a.shape == b.shape else float("nan")


def compare(
    model: str,
    layers: list[tuple[str, str, str]],
    output_key: str,
    torch: WorkerResult,
    keras: WorkerResult,
    settings: dict[str, Any],
    params: dict[str, int],
) -> ParityResult:
    """`layers` holds (array key, name to show, layer type) in execution order."""
    atol, grad_atol = settings["atol"], settings["grad_atol"]
    t, k = torch.arrays, keras.arrays
    layer_diffs = []
    for key, name, kind in layers:
        a, b = t.get(f"act/{key}"), k.get(f"act/{key}")
        diff = _diff(a, b)
        shape = list(b.shape[1:]) if b is not None else []
        layer_diffs.append(Diff(name, kind, "", shape, diff, not diff > atol))
    names = {key: (name, kind) for key, name, kind in layers}
    gradients = []
    order = {key: i for i, (key, _, _) in enumerate(layers)}
    grad_keys = [n.split("/") for n in k if n.startswith("grad/")]
    for _, key, part in sorted(grad_keys, key=lambda g: (order[g[1]], g[2])):
        flat = f"grad/{key}/{part}"
        diff = _diff(t.get(flat), k[flat])
        gradients.append(
            Diff(names[key][0], names[key][1], part, list(k[flat].shape), diff, diff <= grad_atol)
        )
    out_t, out_k = t[output_key], k[output_key]
    out_abs = _max_abs(out_t, out_k) if out_t.shape == out_k.shape else float("inf")
    scale = float(np.max(np.abs(out_k))) or 1.0
    loss = {"torch": float(t["loss"]), "keras": float(k["loss"])}
    loss_diff = abs(loss["torch"] - loss["keras"])
    first = next((d.layer for d in layer_diffs if not d.ok), None)
    if first is None and out_abs > atol:
        first = "(model output)"
    passed = first is None and loss_diff <= grad_atol and all(d.ok for d in gradients)
    return ParityResult(
        model=model,
        passed=passed,
        output_max_abs=out_abs,
        output_max_rel=out_abs / scale,
        first_divergent=first,
        loss=loss,
        loss_abs_diff=loss_diff,
        layers=layer_diffs,
        gradients=gradients,
        params={**params, "torch": torch.meta.get("params", -1), "keras": keras.meta.get("params", -1)},
        settings=settings,
        frameworks={"torch": torch.meta, "keras": keras.meta},
    )
