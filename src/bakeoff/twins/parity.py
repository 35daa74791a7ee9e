"""Parity: do the twins compute the same thing? Outputs, every layer's activations, loss and gradients.

Each framework runs in its own worker; this module only sends the canonical weights and one batch,
and compares what comes back, in canonical (channels-last) layout.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError, PairError, UsageError, WorkerError
from bakeoff.measure.env import physical_cores
from bakeoff.measure.isolation import WorkerResult, run_workers
from bakeoff.npz import save_arrays
from bakeoff.spec.flops import count_params
from bakeoff.spec.graph import Graph
from bakeoff.twins import explain
from bakeoff.twins.byo import USER_JOBS, parse_ref
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
    # Likely causes of the first divergence, in words with the fix; the first explains that layer.
    causes: list[explain.Cause] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def worst_gradient(self) -> Diff | None:
        return max(self.gradients, key=lambda d: d.max_abs, default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, with_cause: bool = True) -> str:
        if self.passed:
            worst = self.worst_gradient
            grad = f", max gradient diff {worst.max_abs:.2e}" if worst else ""
            return f"parity ok: max output diff {self.output_max_abs:.2e}{grad}"
        cause = f": {self.causes[0].text}" if self.causes and with_cause else ""
        if self.first_divergent:
            return f"parity FAILED: first divergent layer '{self.first_divergent}'{cause}"
        bad = [f"{d.layer}.{d.key}" for d in self.gradients if not d.ok]
        return f"parity FAILED: gradients differ for {', '.join(bad[:3]) or 'the loss'}{cause}"


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
    results = run_workers(requests, workdir, fresh=any(r["job"] in USER_JOBS for r in requests))
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


@dataclass(frozen=True)
class Pair:
    """A user's own pair: `input_shapes` per sample, channels-last (see `twins.layout`);
    `match_defaults` gives the Keras side torch's settings where the defaults differ, for the check."""

    torch: str
    keras: str
    input_shapes: list[tuple[int, ...]]
    match_defaults: bool = False


def check_pair(
    torch_ref: str,
    keras_ref: str,
    input_shapes: list[tuple[int, ...]],
    options: ParityOptions | None = None,
    match_defaults: bool = False,
    errors_dir: Path | None = None,
) -> ParityResult:
    """Parity of a user's own pair: the torch model's weights are mapped into the Keras model by layer
    order and shape, then both are run on one batch (images channels-last here, NCHW for torch)."""
    (result,) = check_pairs([Pair(torch_ref, keras_ref, input_shapes, match_defaults)], options, errors_dir)
    if isinstance(result, BakeoffError):
        raise result
    return result


def check_pairs(
    pairs: list[Pair],
    options: ParityOptions | None = None,
    errors_dir: Path | None = None,
) -> list[ParityResult | PairError]:
    """Parity of several pairs with one worker process per framework (each starts in seconds; the
    pairs' files then share it). A pair that cannot be loaded or matched gives its PairError; with
    `errors_dir`, the full traceback of a user's code that raised is saved there and named."""
    for pair in pairs:
        parse_ref(pair.torch, "--torch")
        parse_ref(pair.keras, "--keras")
    opts = options or ParityOptions()
    common = {"job": "byo", "threads": opts.thread_count, "seed": opts.seed}
    outcomes: list[ParityResult | PairError] = []
    with tempfile.TemporaryDirectory(prefix="bakeoff-pair-") as tmp:
        workdir = Path(tmp)
        torch_pairs = []
        for index, pair in enumerate(pairs):
            rng = np.random.default_rng(opts.seed + 1)
            inputs = {
                f"input/{i:02d}": rng.normal(size=(opts.batch, *shape)).astype(np.float32)
                for i, shape in enumerate(pair.input_shapes)
            }
            save_arrays(workdir / f"batch-{index}.npz", inputs)
            torch_pairs.append({"ref": pair.torch, "batch": str(workdir / f"batch-{index}.npz")})
        torch = _run([{**common, "framework": "torch", "pairs": torch_pairs}], workdir / "torch")["torch"]
        keras_pairs, failed = [], {}
        for index, meta in enumerate(torch.meta["pairs"]):
            if "error" in meta:
                failed[index] = _pair_error("torch", meta, errors_dir)
                continue
            mine = _own(torch.arrays, index)
            save_arrays(
                workdir / f"torch-{index}.npz", {k: v for k, v in mine.items() if k.startswith("weight/")}
            )
            save_arrays(
                workdir / f"used-{index}.npz", {k: v for k, v in mine.items() if k.startswith("input/")}
            )
            keras_pairs.append(
                {
                    "index": index,
                    "ref": pairs[index].keras,
                    "match_defaults": pairs[index].match_defaults,
                    "batch": str(workdir / f"used-{index}.npz"),
                    "torch_weights": str(workdir / f"torch-{index}.npz"),
                    "torch_layers": json.dumps(meta["layers"]),
                }
            )
        keras = None
        if keras_pairs:
            request = {**common, "framework": "keras", "pairs": keras_pairs}
            keras = _run([request], workdir / "keras")["keras"]
    sent = {p["index"]: n for n, p in enumerate(keras_pairs)}
    for index, pair in enumerate(pairs):
        if index in failed:
            outcomes.append(failed[index])
            continue
        assert keras is not None
        keras_meta = keras.meta["pairs"][sent[index]]
        if "error" in keras_meta:
            outcomes.append(_pair_error("keras", keras_meta, errors_dir))
            continue
        outcomes.append(
            _compare_pair(
                pair,
                (_own(torch.arrays, index), torch.meta["pairs"][index] | _versions(torch.meta)),
                (_own(keras.arrays, sent[index]), keras_meta | _versions(keras.meta)),
                opts,
            )
        )
    return outcomes


def _own(arrays: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    prefix = f"{index}/"
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def _versions(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "pairs"}


def _pair_error(framework: str, meta: dict[str, Any], errors_dir: Path | None) -> PairError:
    message = f"{framework}: {meta['error']}"
    if meta.get("detail") and errors_dir is not None:
        errors_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = next(
            p
            for n in range(1000)
            if not (p := errors_dir / f"{stamp}-{framework}{f'-{n}' if n else ''}.txt").exists()
        )
        path.write_text(meta["detail"])
        message += f" (full text: {path})"
    error = PairError(message)
    error.detail = meta.get("detail", "")
    return error


def _compare_pair(
    pair: Pair,
    torch_side: tuple[dict[str, np.ndarray], dict[str, Any]],
    keras_side: tuple[dict[str, np.ndarray], dict[str, Any]],
    opts: ParityOptions,
) -> ParityResult:
    (t, torch_meta), (k, keras_meta) = torch_side, keras_side
    described = list(zip(torch_meta["layers"], keras_meta["layers"], strict=True))
    atol = opts.atol
    for i, (layer, _) in enumerate(described):
        a, b = t.get(f"act/{i}"), k.get(f"act/{i}")
        # torch's RNN returns every step; a Keras RNN without return_sequences, the last one only (a
        # bidirectional one's backward half is its first step, so it stays not comparable).
        recurrent = layer["kind"] in ("lstm", "gru") and not layer["bidirectional"]
        if recurrent and a is not None and b is not None and a.ndim == b.ndim + 1:
            t[f"act/{i}"] = a[:, -1]
    layers: list[tuple[str, str, str]] = []
    rows: list[tuple[str, str, int]] = []
    previous_ok = True
    for i, (layer, keras_layer) in enumerate(described):
        name = f"{layer['name']} ↔ {keras_layer['name']}"
        into = _diff(t.get(f"in/{i}"), k.get(f"in/{i}"))
        if previous_ok and into > atol:
            # The layer's input already differs while the layer before agreed: what runs between them.
            before = torch_meta["before_first"] if i == 0 else layer_after(described[i - 1][0])
            keras_before = keras_meta["before_first"] if i == 0 else layer_after(described[i - 1][1])
            label = f"before {name}" if i == 0 else f"after {layers[-1][1]}"
            t[f"act/in{i}"], k[f"act/in{i}"] = t[f"in/{i}"], k[f"in/{i}"]
            kinds = f"{explain.ops_text(before)} ↔ {explain.ops_text(keras_before)}"
            layers.append((f"in{i}", label, kinds))
            rows.append((label, "between", i))
        layers.append((str(i), name, layer["kind"]))
        rows.append((name, "at", i))
        previous_ok = not _diff(t.get(f"act/{i}"), k.get(f"act/{i}")) > atol
    settings = {**opts.settings("mse to a seeded random target"), "match_defaults": pair.match_defaults}
    result = compare(
        f"{pair.torch} ↔ {pair.keras}",
        layers,
        "output",
        _Side(t, torch_meta),
        _Side(k, keras_meta),
        settings,
        {},
    )
    result.causes = explain.causes(rows, result.first_divergent, torch_meta, keras_meta)
    notes = [torch_meta["note"]] if torch_meta.get("note") else []
    notes += [f"{MATCHED}: {change}" for change in keras_meta.get("matched", [])]
    # A momentum the cause already names needs no note of its own.
    named = [f"{c.layer}: BatchNorm momentum" for c in result.causes if "momentum differs" in c.text]
    unseen = [n for n in explain.setting_notes(torch_meta, keras_meta) if not n.startswith(tuple(named))]
    result.notes = notes + unseen
    return result


MATCHED = "--match-defaults set, for this check only"


def layer_after(layer: dict[str, Any]) -> list[dict[str, Any]]:
    return list(layer.get("after", []))


@dataclass
class _Side:
    """One framework's arrays and meta, shaped as `compare` reads a worker's result."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


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
    torch: WorkerResult | _Side,
    keras: WorkerResult | _Side,
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
