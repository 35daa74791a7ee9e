"""One rule per claim: reads a run's records and says whether the claim holds here.

Every speed comparison is a bootstrap ratio of medians with its 95% CI, judged against the practical
margin (`Ratio.practical`): a CI wholly outside ±margin names a side, a CI inside it is "no practical
difference", and a CI that straddles it decides nothing ("not decided"), never a win. Exact quantities
(a conversion that verifies or not, lines of code changed) are compared as they are.

Rules for stages bakeoff does not have yet (serve, distributed, debug, backends) name in their docstring
the record shape they read; a stage that writes records of that shape lights its claims up unchanged.
A record of another shape makes the claim "not measured" with the field that was missing, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bakeoff.measure import rounds
from bakeoff.measure.stats import Ratio
from bakeoff.report.digest import family
from bakeoff.report.targets import NATIVE_RUNTIMES, fp32, runnable
from bakeoff.results.run import Run
from bakeoff.stages.export.artifacts import ARTIFACTS
from bakeoff.stages.serve import OWN_TFSERVING

HOLDS = "holds"
FAILS = "does not hold"
SAME = "no practical difference"
UNDECIDED = "not decided"
NOT_MEASURED = "not measured"
STATUSES = (HOLDS, FAILS, SAME, UNDECIDED, NOT_MEASURED)

# Records that summarize or probe rather than measure a contender.
_NOT_CASES = {"peak", "summary", "fit", "input-bound", "same augmentation", "probe"}


@dataclass(frozen=True)
class Comparison:
    """The claim's side `a` against `b`: median(a)/median(b) with its 95% CI, and which side the
    interval favours at the margin: 'a', 'b', 'equivalent' or 'undecided'."""

    what: str
    a: str
    b: str
    a_median: float
    b_median: float
    unit: str  # 's' (lower is better), or a rate such as 'samples/s' or '%' (higher is better)
    ratio: float
    low: float
    high: float
    better: str
    # True when there is no interval: a ratio of two sampled means (GPU utilization), low == high.
    point: bool = False

    @property
    def higher_is_better(self) -> bool:
        return self.unit != "s"

    def sentence(self, margin: float) -> str:
        values = f"{self.a} {_value(self.a_median, self.unit)}, {self.b} {_value(self.b_median, self.unit)}"
        ci = "no interval" if self.point else f"95% CI {self.low:.2f}-{self.high:.2f}"
        ratio = f"ratio {self.ratio:.2f} ({ci})"
        if self.better in ("a", "b"):
            winner = self.a if self.better == "a" else self.b
            judged = f"{winner} better, outside the ±{margin:.0%} margin"
        elif self.better == "equivalent":
            judged = f"within ±{margin:.0%}: no practical difference"
        else:
            judged = f"the interval straddles the ±{margin:.0%} margin: not decided"
        return f"{self.what}: {values}; {ratio}; {judged}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    status: str
    summary: str  # one line: what this run says about the claim, or why it says nothing
    comparisons: tuple[Comparison, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)  # facts that inform but do not decide


Rule = Callable[[Run, float], Finding]


# ---------------------------------------------------------------- comparing


def compare(
    what: str,
    a: str,
    a_samples: Samples,
    b: str,
    b_samples: Samples,
    margin: float,
    unit: str = "s",
    paired: bool = False,
) -> Comparison:
    """Ratio of medians with a 95% CI, bootstrapped over rounds then calls where the samples come in
    rounds (inference; `paired`: two cases of one run, measured side by side), over blocks of
    consecutive values otherwise (they are not independent: warm caches, clock drift)."""
    a_rounds, b_rounds = _as_rounds(a_samples), _as_rounds(b_samples)
    r = rounds.ratio(a_rounds, b_rounds, paired=paired)
    return _judged(what, a, b, _median(_flat(a_rounds)), _median(_flat(b_rounds)), unit, r, margin)


# Samples come as one flat sequence, or as rounds (a list of arrays, as `measure.rounds` splits them).
Samples = Sequence[float] | Sequence[np.ndarray]


def _as_rounds(samples: Samples) -> list[np.ndarray]:
    if len(samples) and isinstance(samples[0], np.ndarray):
        return [np.asarray(r, dtype=float) for r in samples]
    return [np.asarray(samples, dtype=float)]


def _flat(parts: list[np.ndarray]) -> list[float]:
    return [float(v) for part in parts for v in part]


def compare_points(
    what: str, a: str, a_value: float, b: str, b_value: float, margin: float, unit: str
) -> Comparison:
    """Two single values (no samples to bootstrap): the margin still decides, on the point ratio."""
    ratio = a_value / b_value
    r = Ratio(ratio, ratio, ratio)
    return _judged(what, a, b, a_value, b_value, unit, r, margin, point=True)


def _judged(
    what: str,
    a: str,
    b: str,
    a_median: float,
    b_median: float,
    unit: str,
    r: Ratio,
    margin: float,
    point: bool = False,
) -> Comparison:
    kind = r.practical(margin)
    better = kind
    if kind == "win":
        a_higher = r.low > 1.0
        better = "a" if a_higher == (unit != "s") else "b"
    return Comparison(what, a, b, a_median, b_median, unit, r.ratio, r.low, r.high, better, point)


def combine(comparisons: Sequence[Comparison]) -> str:
    """The claim's side must be better (or equal) everywhere to hold and worse (or equal) everywhere to
    fail; all equal is no practical difference; a straddling interval or a split decides nothing."""
    outcomes = {c.better for c in comparisons}
    if outcomes == {"equivalent"}:
        return SAME
    if "undecided" in outcomes or {"a", "b"} <= outcomes:
        return UNDECIDED
    return HOLDS if "a" in outcomes else FAILS


def _finding(comparisons: Sequence[Comparison], says: dict[str, str], notes: Sequence[str] = ()) -> Finding:
    status = combine(comparisons)
    summary = says[status] if status in says else _undecided(comparisons)
    return Finding(status, summary, tuple(comparisons), tuple(notes))


def _undecided(comparisons: Sequence[Comparison]) -> str:
    count = {side: sum(c.better == side for c in comparisons) for side in ("a", "b", "undecided")}
    if count["a"] and count["b"]:
        return (
            f"mixed: {count['a']} of {len(comparisons)} comparisons side with the claim and "
            f"{count['b']} against it"
        )
    if len(comparisons) == 1:
        return "the interval straddles the margin: a longer run would decide"
    return (
        f"{count['undecided']} of {len(comparisons)} intervals straddle the margin: a longer run would decide"
    )


def not_measured(run: Run, stage: str, why: str) -> Finding:
    """Names what is missing: the stage (stopped before, not asked for) or, inside it, `why`."""
    if stage in run.missing:
        return Finding(NOT_MEASURED, f"the run stopped before its {stage} stage left a record")
    if not run.stage(stage):
        asked = run.info.get("stages") or []
        if stage not in asked:
            return Finding(
                NOT_MEASURED, f"no {stage} stage in this run (stages: {', '.join(asked) or 'none'})"
            )
        return Finding(NOT_MEASURED, f"the {stage} stage left no record")
    return Finding(NOT_MEASURED, why)


# ---------------------------------------------------------------- reading records


def _ok(run: Run, stage: str) -> dict[str, dict[str, Any]]:
    return {r["case"]: r for r in run.stage(stage) if r["status"] == "ok" and r["case"] not in _NOT_CASES}


def _trained(run: Run) -> dict[str, dict[str, Any]]:
    """Finished training modes with steps to compare (the first step is compile/trace, left out)."""
    return {
        case: r["metrics"]
        for case, r in _ok(run, "train").items()
        if len(r["metrics"].get("step_times", [])) > 2
    }


def _step_compare(
    run: Run, done: dict[str, dict[str, Any]], a: str, b: str, margin: float, what: str, a_label: str = ""
) -> Comparison:
    """Two training modes' step times: their timing rounds, paired, where every trained mode has them;
    else their training runs' steady steps in contiguous segments (measure.rounds.pair_rounds)."""
    a_rounds, b_rounds, paired = rounds.pair_rounds(
        done[a], done[b], rounds.timing_of(run.train_timing, done), a, b
    )
    return compare(what, a_label or a, a_rounds, b, b_rounds, margin, paired=paired)


def _fastest(run: Run, cases: dict[str, dict[str, Any]], names: Sequence[str]) -> str | None:
    found = [n for n in names if n in cases]
    medians = rounds.step_medians(cases, run.train_timing)
    return min(found, key=medians.__getitem__) if found else None


def _train_device_note(run: Run) -> list[str]:
    devices = {r["settings"].get("device") for r in run.stage("train") if r.get("settings")}
    if devices and "cuda" not in devices:
        return ["measured on the CPU; the article speaks of GPUs (a GPU run checks it there)"]
    return []


def _inferred(run: Run, device: str) -> dict[str, dict[str, Any]]:
    """Inference cases that finished on `device` and kept their outputs (quality gate not failed)."""
    return runnable(run.stage("infer"), device)


def _batch_times(metrics: dict[str, Any], batch: int) -> list[np.ndarray] | None:
    """One batch size's call times, by round."""
    entry = metrics.get("batches", {}).get(str(batch))
    return rounds.of_batch(entry) if entry and entry.get("times") else None


def _batches(*cases: dict[str, Any]) -> list[int]:
    """Batch sizes every one of `cases` measured, ascending."""
    sets = [{int(b) for b in m.get("batches", {})} for m in cases]
    return sorted(set.intersection(*sets)) if sets else []


def _origin(case: str) -> str:
    artifact = ARTIFACTS.get(case.split("/")[-1])
    return artifact.origin if artifact else "?"


def _best_at(cases: dict[str, dict[str, Any]], names: Sequence[str], batch: int) -> str | None:
    found = [n for n in names if _batch_times(cases[n], batch)]
    return min(found, key=lambda n: _median(_flat(_batch_times(cases[n], batch) or []))) if found else None


def _setting(record: dict[str, Any], key: str) -> Any:
    return (record.get("settings") or {}).get(key)


# ---------------------------------------------------------------- training


def compile_vs_xla(run: Run, margin: float) -> Finding:
    """train records `torch-compile` and `keras-xla`: their step times (first step excluded)."""
    done = _trained(run)
    missing = [m for m in ("torch-compile", "keras-xla") if m not in done]
    if missing:
        return not_measured(run, "train", f"no finished {' or '.join(missing)} training mode in this run")
    c = _step_compare(run, done, "torch-compile", "keras-xla", margin, "training step time")
    firsts = ", ".join(
        f"{m} {done[m]['first_step_s']:.2f} s"
        for m in ("torch-compile", "keras-xla")
        if "first_step_s" in done[m]
    )
    notes = _train_device_note(run) + (
        [f"first step (compile), not in the step times: {firsts}"] if firsts else []
    )
    says = {
        HOLDS: "torch.compile trains faster than XLA here ('sometimes even past' it)",
        SAME: "torch.compile trains as fast as XLA here ('right up there with' it, not past it)",
        FAILS: "XLA trains faster than torch.compile here",
    }
    return _finding([c], says, notes)


def reduce_overhead(run: Run, margin: float) -> Finding:
    """train record `torch-compile` with settings.compile_mode 'reduce-overhead', against the faster of
    the compiled Keras modes (`keras-graph`, `keras-xla`): the overhead gap the article says is gone."""
    done = _trained(run)
    if "torch-compile" not in done:
        return not_measured(run, "train", "no finished torch-compile training mode in this run")
    record = run.case("train", "torch-compile") or {}
    mode = _setting(record, "compile_mode") or "default"
    if mode != "reduce-overhead":
        return Finding(NOT_MEASURED, f"this run's torch-compile used --compile-mode {mode}")
    tf = _fastest(run, done, ("keras-graph", "keras-xla"))
    if tf is None:
        return Finding(
            NOT_MEASURED, "no compiled Keras mode (keras-graph or keras-xla) to measure the gap against"
        )
    label = "torch-compile (reduce-overhead)"
    c = _step_compare(run, done, "torch-compile", tf, margin, "training step time", label)
    notes = list(_train_device_note(run))
    if "torch-eager" in done:
        eager = _step_compare(
            run, done, "torch-compile", "torch-eager", margin, "against eager PyTorch", label
        )
        notes.append(eager.sentence(margin))
    says = {
        HOLDS: f"reduce-overhead PyTorch steps faster than {tf}: no overhead left to fix here",
        SAME: f"reduce-overhead PyTorch steps as fast as {tf}: the overhead gap is gone here",
        FAILS: f"{tf} still steps faster than reduce-overhead PyTorch: the overhead is not fixed here",
    }
    return _finding([c], says, notes)


def gpu_utilization(run: Run, margin: float) -> Finding:
    """train records on device 'cuda' with metrics.resources.gpu_util_mean (NVML, %): the highest
    PyTorch mode against the highest Keras mode. The sampler keeps a mean and a peak per mode, not the
    series, so this one compares two means without an interval (the margin still decides)."""
    cuda = {c: m for c, m in _trained(run).items() if m.get("device") == "cuda"}
    if not cuda:
        if not run.stage("train"):
            return not_measured(run, "train", "")
        return Finding(NOT_MEASURED, "no training mode ran on a GPU in this run")
    util = {c: (m.get("resources") or {}).get("gpu_util_mean") for c, m in cuda.items()}
    sampled = {c: u for c, u in util.items() if u is not None}
    if not sampled:
        notes = {(m.get("resources") or {}).get("note", "") for m in cuda.values()} - {""}
        return Finding(
            NOT_MEASURED, "GPU utilization was not sampled: " + ("; ".join(notes) or "no NVML samples")
        )
    best = {}
    for side in ("PyTorch", "TensorFlow"):
        mine = [c for c in sampled if family(c) == side]
        if not mine:
            return Finding(NOT_MEASURED, f"no {side} training mode on the GPU with sampled utilization")
        best[side] = max(mine, key=lambda c: sampled[c])
    t, k = best["PyTorch"], best["TensorFlow"]
    c = compare_points("mean GPU utilization", t, sampled[t], k, sampled[k], margin, "%")
    peaks = ", ".join(f"{m} peak {(cuda[m].get('resources') or {}).get('gpu_util_peak')}%" for m in (t, k))
    says = {
        HOLDS: "PyTorch keeps the GPU busier than TensorFlow here",
        SAME: "both keep the GPU about equally busy here",
        FAILS: "TensorFlow keeps the GPU busier than PyTorch here",
    }
    return _finding([c], says, [peaks, "means of NVML samples: no interval, so only the margin decides"])


# ---------------------------------------------------------------- input pipelines


def tf_data(run: Run, margin: float) -> Finding:
    """pipeline records (framework 'keras' for tf.data variants, 'torch' for DataLoader ones) with
    metrics.raw.batch_s: the fastest variant of each side by samples/s, compared batch by batch."""
    cases = {c: r for c, r in _ok(run, "pipeline").items() if (r["metrics"].get("raw") or {}).get("batch_s")}
    best = {}
    for framework in ("keras", "torch"):
        mine = [c for c, r in cases.items() if r["framework"] == framework]
        if not mine:
            return not_measured(run, "pipeline", f"no finished {framework} input pipeline in this run")
        best[framework] = max(mine, key=lambda c: cases[c]["metrics"]["samples_per_s"])
    k, t = best["keras"], best["torch"]
    c = compare(
        "time per batch",
        k,
        cases[k]["metrics"]["raw"]["batch_s"],
        t,
        cases[t]["metrics"]["raw"]["batch_s"],
        margin,
    )
    notes = [r["message"] for r in run.stage("pipeline") if r["case"] == "input-bound" and r["message"]]
    says = {
        HOLDS: f"tf.data ({k}) feeds batches faster than the best DataLoader ({t}) here",
        SAME: "tf.data and DataLoader feed batches equally fast here",
        FAILS: f"the best DataLoader ({t}) feeds batches faster than tf.data ({k}) here",
    }
    return _finding([c], says, notes)


# ---------------------------------------------------------------- serving (the serve stage)


def _served(run: Run) -> list[dict[str, Any]]:
    return list(_ok(run, "serve").values())


def tf_serving(run: Run, margin: float) -> Finding:
    """TF Serving against the best other server on latency and on throughput.

    Reads serve records: settings.server ('tf-serving', 'triton', 'torchserve', ...), settings.batching
    ('dynamic' or 'none'), settings.concurrency (int); metrics.latency_s (seconds per request) and
    metrics.throughput_rps (requests/s per measurement window)."""
    served = _served(run)
    if not served:
        return not_measured(run, "serve", "the serve stage finished no case")
    tfs = [r for r in served if _setting(r, "server") == "tf-serving"]
    others = [r for r in served if _setting(r, "server") != "tf-serving"]
    if not tfs:
        return Finding(NOT_MEASURED, "the serve stage ran without TF Serving")
    if not others:
        return Finding(NOT_MEASURED, "TF Serving ran alone: no other server to compare it with")

    def quick(r: dict[str, Any]) -> float:
        return _median(r["metrics"]["latency_s"])

    def busy(r: dict[str, Any]) -> float:
        return _median(r["metrics"]["throughput_rps"])

    a_lat, b_lat = min(tfs, key=quick), min(others, key=quick)
    a_thr, b_thr = max(tfs, key=busy), max(others, key=busy)
    comparisons = [
        compare(
            "request latency",
            a_lat["case"],
            a_lat["metrics"]["latency_s"],
            b_lat["case"],
            b_lat["metrics"]["latency_s"],
            margin,
        ),
        compare(
            "throughput",
            a_thr["case"],
            a_thr["metrics"]["throughput_rps"],
            b_thr["case"],
            b_thr["metrics"]["throughput_rps"],
            margin,
            "requests/s",
        ),
    ]
    says = {
        HOLDS: "TF Serving beats every other server measured here on latency and throughput",
        SAME: "TF Serving and the best other server are equal here on latency and throughput",
        FAILS: "another server beats TF Serving here",
    }
    found = _finding(comparisons, says)
    if any(_implementation(r) == OWN_TFSERVING for r in tfs):
        # The stand-in speaks TF Serving's API; its speed says nothing about tensorflow_model_server's.
        return Finding(
            NOT_MEASURED,
            "tensorflow_model_server did not run (not installed here): bakeoff's implementation of its API "
            f"stood in, and its numbers are not TF Serving's (the stand-in: {found.summary})",
            found.comparisons,
            ("install tensorflow_model_server (or give --tfserving-bin) to check the claim",),
        )
    return found


def _implementation(record: dict[str, Any]) -> str | None:
    return record["settings"].get("implementation") or record["metrics"].get("implementation")


def _batching(run: Run, server: str, margin: float) -> Finding:
    served = [r for r in _served(run) if _setting(r, "server") == server]
    if not _served(run):
        return not_measured(run, "serve", "the serve stage finished no case")
    if not served:
        return Finding(NOT_MEASURED, f"the serve stage ran without {server}")
    on = [r for r in served if _setting(r, "batching") not in (None, "none")]
    off = [r for r in served if _setting(r, "batching") in (None, "none")]
    # Batching pays off only under concurrent load: compare at the highest concurrency both measured.
    levels = {_setting(r, "concurrency") for r in on} & {_setting(r, "concurrency") for r in off}
    if not levels:
        return Finding(NOT_MEASURED, f"needs {server} with and without batching at one concurrency")
    level = max(levels, key=lambda x: x or 0)

    def best(rs: list[dict[str, Any]]) -> dict[str, Any]:
        same = [r for r in rs if _setting(r, "concurrency") == level]
        return max(same, key=lambda r: _median(r["metrics"]["throughput_rps"]))

    a, b = best(on), best(off)
    c = compare(
        f"throughput at concurrency {level}",
        a["case"],
        a["metrics"]["throughput_rps"],
        b["case"],
        b["metrics"]["throughput_rps"],
        margin,
        "requests/s",
    )
    says = {
        HOLDS: f"{server}'s batching raises throughput here",
        SAME: f"{server}'s batching makes no practical difference to throughput here",
        FAILS: f"{server} serves more without batching here",
    }
    return _finding([c], says)


def triton_batching(run: Run, margin: float) -> Finding:
    """Triton with dynamic batching against Triton without, at the highest concurrency both ran.

    Reads serve records with settings.server 'triton', settings.batching ('dynamic' or 'none'),
    settings.concurrency, and metrics.throughput_rps (requests/s per measurement window)."""
    return _batching(run, "triton", margin)


def torchserve_batching(run: Run, margin: float) -> Finding:
    """TorchServe with batching (batch_size > 1, max_batch_delay) against without, as for Triton.

    Reads serve records with settings.server 'torchserve', settings.batching ('dynamic' or 'none'),
    settings.concurrency, and metrics.throughput_rps."""
    return _batching(run, "torchserve", margin)


# ---------------------------------------------------------------- inference


def tflite_edge(run: Run, margin: float) -> Finding:
    """infer records `litert/keras-tflite-fp32` and `onnxruntime/torch-onnx` (PyTorch's edge path on this
    machine), fp32 both (fairness rule 5), at the smallest batch both ran: edge devices answer one
    request at a time."""
    cases = _inferred(run, "cpu")
    a, b = "litert/keras-tflite-fp32", "onnxruntime/torch-onnx"
    missing = [c for c in (a, b) if c not in cases]
    if missing:
        return not_measured(run, "infer", f"no finished {' or '.join(missing)} inference case in this run")
    sizes = _batches(cases[a], cases[b])
    if not sizes:
        return Finding(NOT_MEASURED, f"{a} and {b} share no batch size")
    batch = sizes[0]
    c = compare(
        f"latency at batch {batch}",
        a,
        _batch_times(cases[a], batch) or [],
        b,
        _batch_times(cases[b], batch) or [],
        margin,
        paired=True,
    )
    notes = ["measured on this machine's CPU, not on a phone or an edge board"]
    sizes_kb = {
        n: (run.case("export", n) or {}).get("metrics", {}).get("size_bytes")
        for n in ("keras-tflite-fp32", "torch-onnx")
    }
    if all(sizes_kb.values()):
        notes.append(", ".join(f"{n} {v / 1024:,.0f} KB" for n, v in sizes_kb.items() if v))
    says = {
        HOLDS: "LiteRT (TFLite) answers a single request faster than PyTorch's edge path here",
        SAME: "LiteRT (TFLite) and PyTorch's edge path answer equally fast here",
        FAILS: "PyTorch's edge path (ONNX Runtime) answers faster than LiteRT here",
    }
    return _finding([c], says, notes)


def onnxruntime_extra(run: Run, margin: float) -> Finding:
    """infer records `onnxruntime/torch-onnx` and `onnxruntime/keras-onnx` against the fastest fp32
    native runtime of the same framework, at the smallest and the largest batch."""
    cases = _inferred(run, "cpu")
    comparisons = []
    for origin in ("torch", "keras"):
        ort = f"onnxruntime/{origin}-onnx"
        natives = [
            c for c in cases if c.split("/")[0] in NATIVE_RUNTIMES and _origin(c) == origin and fp32(c)
        ]
        if ort not in cases or not natives:
            continue
        sizes = sorted({b for n in natives for b in _batches(cases[ort], cases[n])})
        for batch in dict.fromkeys((sizes[0], sizes[-1])) if sizes else ():
            native = _best_at(cases, natives, batch)
            if native is None:
                continue
            comparisons.append(
                compare(
                    f"{family(ort)} latency at batch {batch}",
                    ort,
                    _batch_times(cases[ort], batch) or [],
                    native,
                    _batch_times(cases[native], batch) or [],
                    margin,
                    paired=True,
                )
            )
    if not comparisons:
        return not_measured(
            run, "infer", "no ONNX Runtime case beside a native runtime of the same framework"
        )
    says = {
        HOLDS: "ONNX Runtime runs the exported graph faster than each framework's own fastest runtime here",
        SAME: "ONNX Runtime and the frameworks' own runtimes are equally fast here",
        FAILS: "each framework's own runtime beats ONNX Runtime here",
    }
    return _finding(comparisons, says)


def tensorrt(run: Run, margin: float) -> Finding:
    """infer records on device 'cuda': `onnxruntime-tensorrt/X` against `onnxruntime-cuda/X` for the same
    artifact X, at the largest batch both ran. An INT8 artifact on TensorRT is compared the same way."""
    cuda = _inferred(run, "cuda")
    if not cuda:
        if not run.stage("infer"):
            return not_measured(run, "infer", "")
        return Finding(NOT_MEASURED, "no inference case ran on a GPU in this run")
    comparisons = []
    for case in sorted(c for c in cuda if c.startswith("onnxruntime-tensorrt/")):
        base = "onnxruntime-cuda/" + case.split("/", 1)[1]
        sizes = _batches(cuda[case], cuda[base]) if base in cuda else []
        if sizes:
            comparisons.append(
                compare(
                    f"latency at batch {sizes[-1]}",
                    case,
                    _batch_times(cuda[case], sizes[-1]) or [],
                    base,
                    _batch_times(cuda[base], sizes[-1]) or [],
                    margin,
                    paired=True,
                )
            )
    if not comparisons:
        return Finding(NOT_MEASURED, "needs onnxruntime-tensorrt and onnxruntime-cuda cases of one artifact")
    notes = []
    if all(fp32(c.a) for c in comparisons):
        notes.append(
            "TensorRT ran fp32 graphs here: the fusing is measured, the INT8 part of the claim is not"
        )
    says = {
        HOLDS: "TensorRT runs the same graph faster than ONNX Runtime's CUDA provider here",
        SAME: "TensorRT and ONNX Runtime's CUDA provider are equally fast here",
        FAILS: "ONNX Runtime's CUDA provider beats TensorRT here",
    }
    return _finding(comparisons, says, notes)


# ---------------------------------------------------------------- conversion


def onnx_conversion(run: Run, margin: float) -> Finding:
    """export records `torch-onnx-tf` (PyTorch -> ONNX -> TensorFlow) and `keras-onnx-torch` (Keras ->
    ONNX -> PyTorch), written by `bakeoff convert`: each verified against the model it came from, or not.
    Pass or fail is exact: no margin applies."""
    made = {name: run.case("export", name) for name in ("torch-onnx-tf", "keras-onnx-torch")}
    done = {name: r for name, r in made.items() if r is not None}
    if not done:
        exported = [
            n
            for n in ("torch-onnx", "keras-onnx")
            if (r := run.case("export", n)) and r["status"] == "ok" and r["metrics"].get("gate") != "fail"
        ]
        half = (
            f" (this run exported and verified {', '.join(exported)}; importing them is the other half)"
            if exported
            else ""
        )
        return not_measured(run, "export", f"no conversion into the other framework in this run{half}")
    notes, failed = [], []
    for name, r in done.items():
        m = r["metrics"]
        diff = (m.get("verification") or {}).get("max_abs_diff")
        shown = f"max abs diff {diff:.1e}" if diff is not None else "no difference recorded"
        if r["status"] != "ok" or m.get("gate") == "fail":
            failed.append(name)
            notes.append(f"{name}: failed ({r['message'][:120] or 'outputs differ'})")
        else:
            notes.append(f"{name}: converted and verified, {shown}")
    if failed:
        return Finding(
            FAILS, f"{' and '.join(failed)} did not convert faithfully for this model", (), tuple(notes)
        )
    return Finding(
        HOLDS, f"{' and '.join(done)} converted via ONNX and compute the same outputs", (), tuple(notes)
    )


# ---------------------------------------------------------------- debugging (the debug stage)


def debugging(run: Run, margin: float) -> Finding:
    """Each framework's default mode, probed for what a debugger can do there.

    Reads debug records: settings.framework ('torch' or 'keras'), settings.mode ('eager', 'graph', ...),
    settings.default (true for the mode a user gets without asking: eager PyTorch, Keras fit's
    tf.function); metrics.checks, a dict of probe name -> bool (e.g. 'breakpoint_sees_values': pdb inside
    forward shows concrete tensor values; 'traceback_names_user_line')."""
    probes = list(_ok(run, "debug").values())
    if not probes:
        return not_measured(run, "debug", "the debug stage finished no probe")
    default = {}
    for framework in ("torch", "keras"):
        mine = [r for r in probes if _setting(r, "framework") == framework and _setting(r, "default")]
        if not mine:
            return Finding(NOT_MEASURED, f"no probe of {framework}'s default mode")
        default[framework] = {k: bool(v) for r in mine for k, v in r["metrics"]["checks"].items()}
    failed = {fw: sorted(k for k, v in checks.items() if not v) for fw, checks in default.items()}
    notes = [
        f"{fw}: {'every probe passed' if not f else 'fails ' + ', '.join(f)}" for fw, f in failed.items()
    ]
    if not failed["torch"] and failed["keras"]:
        return Finding(
            HOLDS, "a debugger sees more in PyTorch's default mode than in Keras'", (), tuple(notes)
        )
    if not failed["torch"] and not failed["keras"]:
        return Finding(
            SAME, "every debugging probe works in both frameworks' default modes", (), tuple(notes)
        )
    return Finding(FAILS, "PyTorch's default mode fails debugging probes too", (), tuple(notes))


# ---------------------------------------------------------------- Keras backends (the backends stage)

BACKENDS = ("tensorflow", "torch", "jax")


def keras_backends(run: Run, margin: float) -> Finding:
    """The Keras twin run on each backend and compared with the canonical outputs.

    Reads backends records: case = the backend ('tensorflow', 'torch', 'jax'), status ok or failed (with
    the message), metrics.max_abs_diff against the canonical outputs, settings.atol the tolerance."""
    records = {r["case"]: r for r in run.stage("backends")}
    if not records:
        return not_measured(run, "backends", "the backends stage left no record")
    notes, failed = [], []
    for name in BACKENDS:
        r = records.get(name)
        if r is None:
            continue
        diff, atol = r["metrics"].get("max_abs_diff"), _setting(r, "atol")
        if r["status"] != "ok" or (diff is not None and atol is not None and diff > atol):
            failed.append(name)
            notes.append(f"{name}: {r['message'][:120] or f'max abs diff {diff} above {atol}'}")
        else:
            notes.append(
                f"{name}: runs the twin" + (f", max abs diff {diff:.1e}" if diff is not None else "")
            )
    if failed:
        return Finding(FAILS, f"Keras 3 does not run this model on {', '.join(failed)}", (), tuple(notes))
    missing = [b for b in BACKENDS if b not in records]
    if missing:
        return Finding(NOT_MEASURED, f"no record for the {', '.join(missing)} backend(s)", (), tuple(notes))
    return Finding(HOLDS, "Keras 3 runs this model on TensorFlow, PyTorch and JAX alike", (), tuple(notes))


# ---------------------------------------------------------------- distributed (the distributed stage)


def _distributed(run: Run) -> dict[str, list[dict[str, Any]]]:
    by_api: dict[str, list[dict[str, Any]]] = {}
    for r in run.stage("distributed"):
        by_api.setdefault(str(_setting(r, "api")), []).append(r)
    return by_api


def _works(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The working record with the fewest changed lines: it finished and matched the one-process run."""
    good = [r for r in records if r["status"] == "ok" and r["metrics"].get("matches_single", True)]
    return min(good, key=lambda r: r["metrics"]["lines_changed"]) if good else None


def _why_not(api: str, records: list[dict[str, Any]]) -> str:
    messages = [r["message"] for r in records if r["message"]]
    return f"{api} did not train like the one-process run" + (f" ({messages[0][:120]})" if messages else "")


def distribute(run: Run, margin: float) -> Finding:
    """tf.distribute against torch.distributed: does each spread one training job over workers (the same
    loss as one process), and which needed fewer changed lines (exact counts; no margin applies).
    "Finer control" is a property of the API, not a measurement: it is left to the reader.

    Reads distributed records: settings.api ('tf.distribute', 'torch.distributed', 'lightning',
    'accelerate'), settings.workers (int); metrics.lines_changed (lines added or changed against the
    one-process training script), metrics.matches_single (bool: the loss curve equals the one-process run
    at the same global batch), metrics.step_times (seconds)."""
    by_api = _distributed(run)
    if not by_api:
        return not_measured(run, "distributed", "the distributed stage left no record")
    missing = [api for api in ("tf.distribute", "torch.distributed") if api not in by_api]
    if missing:
        return Finding(NOT_MEASURED, f"no {' or '.join(missing)} case in the distributed stage")
    tf, torch = _works(by_api["tf.distribute"]), _works(by_api["torch.distributed"])
    if tf is None:
        return Finding(FAILS, _why_not("tf.distribute", by_api["tf.distribute"]))
    if torch is None:
        return Finding(
            NOT_MEASURED, _why_not("torch.distributed", by_api["torch.distributed"]) + ": nothing to compare"
        )
    lines = {
        api: r["metrics"]["lines_changed"] for api, r in (("tf.distribute", tf), ("torch.distributed", torch))
    }
    notes = [
        f"lines changed from the one-process script: tf.distribute {lines['tf.distribute']}, "
        f"torch.distributed {lines['torch.distributed']}"
    ]
    if tf["metrics"].get("step_times") and torch["metrics"].get("step_times"):
        speed = compare(
            "step time",
            tf["case"],
            tf["metrics"]["step_times"],
            torch["case"],
            torch["metrics"]["step_times"],
            margin,
        )
        notes.append(speed.sentence(margin))
    if lines["tf.distribute"] < lines["torch.distributed"]:
        return Finding(
            HOLDS, "both spread training; tf.distribute needed fewer code changes", (), tuple(notes)
        )
    if lines["tf.distribute"] == lines["torch.distributed"]:
        return Finding(SAME, "both spread training with the same number of changed lines", (), tuple(notes))
    return Finding(FAILS, "torch.distributed needed fewer code changes than tf.distribute", (), tuple(notes))


def lightning_accelerate(run: Run, margin: float) -> Finding:
    """Lightning or Accelerate against plain torch.distributed: the same training spread with fewer
    changed lines. Reads the distributed records described in `distribute`."""
    by_api = _distributed(run)
    if not by_api:
        return not_measured(run, "distributed", "the distributed stage left no record")
    easy = by_api.get("lightning", []) + by_api.get("accelerate", [])
    if not easy:
        return Finding(NOT_MEASURED, "the distributed stage ran neither Lightning nor Accelerate")
    best = _works(easy)
    if best is None:
        return Finding(FAILS, _why_not("Lightning/Accelerate", easy))
    base = _works(by_api.get("torch.distributed", []))
    if base is None:
        return Finding(
            NOT_MEASURED, "needs a working plain torch.distributed case to compare the code change with"
        )
    a, b = best["metrics"]["lines_changed"], base["metrics"]["lines_changed"]
    api = _setting(best, "api")
    notes = [f"lines changed: {api} {a}, torch.distributed {b}"]
    devices = {str(_setting(r, "device")) for r in easy}
    if "cuda" not in devices:
        notes.append("processes on the CPU here, not GPUs")
    if a < b:
        return Finding(
            HOLDS, f"{api} spreads training with fewer changed lines than torch.distributed", (), tuple(notes)
        )
    if a == b:
        return Finding(SAME, f"{api} needs as many changed lines as torch.distributed", (), tuple(notes))
    return Finding(FAILS, f"{api} needs more changed lines than torch.distributed", (), tuple(notes))


# ---------------------------------------------------------------- the whole picture


def tiny_differences(run: Run, margin: float) -> Finding:
    """The fastest PyTorch against the fastest TensorFlow: training step time (train records), and fp32
    inference latency of each framework's own runtimes at the smallest and largest batch (infer records),
    per device. Holds only when every one of them is inside the margin."""
    comparisons = []
    done = _trained(run)
    sides = {
        side: _fastest(run, done, [m for m in done if family(m) == side])
        for side in ("PyTorch", "TensorFlow")
    }
    t, k = sides["PyTorch"], sides["TensorFlow"]
    if t and k:
        comparisons.append(_step_compare(run, done, t, k, margin, "training step time"))
    for device in ("cpu", "cuda"):
        cases = {
            c: m for c, m in _inferred(run, device).items() if c.split("/")[0] in NATIVE_RUNTIMES and fp32(c)
        }
        torch_side = [c for c in cases if family(c) == "PyTorch"]
        tf_side = [c for c in cases if family(c) == "TensorFlow"]
        sizes = sorted({int(b) for m in cases.values() for b in m.get("batches", {})})
        for batch in dict.fromkeys((sizes[0], sizes[-1])) if sizes else ():
            a, b = _best_at(cases, torch_side, batch), _best_at(cases, tf_side, batch)
            if a and b:
                comparisons.append(
                    compare(
                        f"{device} inference latency at batch {batch}",
                        a,
                        _batch_times(cases[a], batch) or [],
                        b,
                        _batch_times(cases[b], batch) or [],
                        margin,
                        paired=True,
                    )
                )
    if not comparisons:
        return not_measured(
            run, "train", "no training or inference comparison of the two frameworks in this run"
        )
    outcomes = [c.better for c in comparisons]
    apart = [c for c in comparisons if c.better in ("a", "b")]
    if apart:
        status = FAILS
        summary = f"{len(apart)} of {len(comparisons)} comparisons differ by more than ±{margin:.0%}"
    elif all(o == "equivalent" for o in outcomes):
        status, summary = HOLDS, f"every comparison is within ±{margin:.0%}"
    else:
        status, summary = UNDECIDED, "no comparison is outside the margin, but some intervals straddle it"
    return Finding(status, summary, tuple(comparisons))


RULES: dict[str, Rule] = {
    rule.__name__: rule
    for rule in (
        compile_vs_xla,
        reduce_overhead,
        gpu_utilization,
        tf_data,
        tf_serving,
        triton_batching,
        torchserve_batching,
        tflite_edge,
        onnxruntime_extra,
        tensorrt,
        onnx_conversion,
        debugging,
        keras_backends,
        distribute,
        lightning_accelerate,
        tiny_differences,
    )
}


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return float("nan")
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def _value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1e3:.3g} ms" if value >= 1e-3 else f"{value * 1e6:.3g} µs"
    if unit == "%":
        return f"{value:.0f}%"
    return f"{value:,.0f} {unit}"
