"""Inference bake-off: every (artifact x runtime) case at several batch sizes, in the runtime's own
worker. Per case: cold start (load, first inference), latency median/p90/p99 per batch size (batch 1 is
MLPerf's SingleStream), throughput (the largest batch is its Offline), accuracy on the validation set
and peak RSS (sampled from outside the worker)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.measure.isolation import WorkerResult, case_loop, run_grouped
from bakeoff.measure.timer import measure
from bakeoff.results.store import make_record
from bakeoff.runtimes import RUNTIMES, WORKERS, Runtime
from bakeoff.stages.export.artifacts import ARTIFACTS, Artifact
from bakeoff.stages.export.shared import ExportJob
from bakeoff.stages.export.verify import check_outputs, judge, load_artifact

DEFAULT_BATCH_SIZES = (1, 8, 64, 256)


@dataclass(frozen=True)
class InferOptions:
    runtimes: tuple[str, ...] = tuple(RUNTIMES)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    min_time: float = 0.2  # per batch size: measure at least this long ...
    max_time: float = 1.0  # ... and at most this long, once warm
    # Enough calls for a p99, few enough that the raw times stay small in records.jsonl and the
    # bootstrap of every ratio takes a second, not half a minute.
    max_runs: int = 1000
    case_timeout: float = 600.0

    def settings(self, threads: int, gpu: bool) -> dict[str, Any]:
        return {
            **asdict(self),
            "threads": threads,
            "precision": "as exported (fp32 unless the artifact says otherwise)",
            "host_device_copies": "included for every runtime: each call takes host numpy inputs and "
            "returns a host numpy output" + ("" if gpu else " (CPU only here: no copies to make)"),
            "inputs": "validation samples, repeated to fill the batch",
            "cold_start": "load = reading the artifact into a ready session in a worker that already "
            "imported and started its framework; first inference = the first batch-1 call (compilation "
            "included)",
            "rss": "peak RSS of the worker during the case, and its RSS when the case began (workers are "
            "shared by the cases of one framework)",
        }


def case_name(runtime: str, artifact: str) -> str:
    return f"{runtime}/{artifact}"


def cases_for(runtime: Runtime, exported: list[str]) -> list[str]:
    """The artifacts a runtime runs: those of its formats that exported and verified ok."""
    return [
        case_name(runtime.name, a)
        for a in exported
        if ARTIFACTS[a].format in runtime.formats and (ARTIFACTS[a].fp32 or not runtime.fp32_only)
    ]


# ---------------------------------------------------------------- worker side


def _batch(xs: list[np.ndarray], size: int) -> list[np.ndarray]:
    reps = -(-size // len(xs[0]))
    return [np.ascontiguousarray(np.concatenate([x] * reps)[:size]) for x in xs]


def run_case(job: ExportJob, runtime: str, artifact: Artifact, request: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    predict = load_artifact(job, artifact, runtime)
    load_s = time.perf_counter() - started
    xs = job.inputs("val", artifact)
    one = _batch(xs, 1)
    t0 = time.perf_counter()
    predict(one)
    first_s = time.perf_counter() - t0
    quality = check_outputs(predict, artifact, job)
    batches: dict[str, Any] = {}
    for size in request["batch_sizes"]:
        feed = _batch(xs, size)
        m = measure(
            partial(predict, feed),
            min_time=request["min_time"],
            max_time=request["max_time"],
            max_runs=request["max_runs"],
        )
        batches[str(size)] = {
            **m.to_dict(),
            "samples_per_s": size / m.stats.median,
            "first_call_s": m.first_call,
        }
    return {"load_s": load_s, "first_inference_s": first_s, "quality": quality, "batches": batches}


def prewarm(worker: str, threads: int) -> None:
    """Pays each worker's one-time start-up (torch._dynamo's import, TensorFlow's runtime, ONNX Runtime's
    environment) before any case, so no case's cold start is charged for it."""
    import importlib

    if worker == "native":
        for module in ("onnxruntime", "ai_edge_litert.interpreter"):
            importlib.import_module(module)
        return
    importlib.import_module(f"bakeoff.frameworks.{worker}.parity").configure(threads)


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    job = ExportJob.from_request(request)
    prewarm(request["framework"], job.threads)

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        runtime, artifact = case.split("/", 1)
        return {}, run_case(job, runtime, ARTIFACTS[artifact], request)

    return case_loop(request, run_one)


# ---------------------------------------------------------------- parent side


def infer_record(case: str, result: WorkerResult, settings: dict[str, Any]) -> dict[str, Any]:
    runtime, artifact = case.split("/", 1)
    framework = RUNTIMES[runtime].worker
    if not result.ok:
        return make_record(
            "infer", case, "failed", framework=framework, message=result.error, settings=settings
        )
    meta = result.meta
    art = ARTIFACTS[artifact]
    status, gate, verdict = judge(art, meta["quality"])
    b1 = meta["batches"].get("1")
    big = meta["batches"][max(meta["batches"], key=int)]
    message = (
        f"p50 {1e3 * b1['stats']['median']:.3f} ms at batch 1, " if b1 else ""
    ) + f"{big['samples_per_s']:,.0f} samples/s at batch {max(meta['batches'], key=int)}"
    if status != "ok" or gate == "fail":
        message = f"{verdict}; {message}"
    metrics = {
        **meta,
        "runtime": runtime,
        "artifact": artifact,
        "precision": art.precision,
        "gate": gate,
        "device": "cuda" if RUNTIMES[runtime].gpu else "cpu",
    }
    return make_record(
        "infer", case, status, framework=framework, message=message, metrics=metrics, settings=settings
    )


def summary_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per device and batch size, the fastest case by median latency and every other case's ratio to it
    (moving-block bootstrap CI over its raw times), so 'no significant difference' is said where it
    holds. An artifact flagged by the accuracy gate is compared, but never named fastest."""
    from bakeoff.measure.stats import ratio_ci

    done = [r for r in records if r["status"] == "ok" and "batches" in r["metrics"]]
    if not done:
        return None
    by_device: dict[str, dict[str, Any]] = {}
    for device in sorted({r["metrics"].get("device", "cpu") for r in done}):
        mine = [r for r in done if r["metrics"].get("device", "cpu") == device]
        for size in sorted({int(b) for r in mine for b in r["metrics"]["batches"]}):
            have = [r for r in mine if str(size) in r["metrics"]["batches"]]
            times = {r["case"]: r["metrics"]["batches"][str(size)]["times"] for r in have}
            eligible = [r["case"] for r in have if r["metrics"].get("gate") != "fail"] or list(times)
            fastest = min(eligible, key=lambda c: float(np.median(times[c])))
            by_device.setdefault(device, {})[str(size)] = {
                "fastest": fastest,
                "vs_fastest": {
                    c: ratio_ci(t, times[fastest], block=None, n_boot=1000).to_dict()
                    for c, t in times.items()
                    if c != fastest
                },
            }
    headline = "; ".join(
        f"{device} batch {size}: {info['fastest']}"
        for device, sizes in by_device.items()
        for size, info in sizes.items()
        if size in (min(sizes, key=int), max(sizes, key=int))
    )
    return make_record(
        "infer", "summary", "ok", message=f"fastest: {headline}", metrics={"by_device": by_device}
    )


def run_inference(
    request: dict[str, Any],
    cases: list[str],
    options: InferOptions,
    settings: dict[str, Any],
    workdir: Path,
    on_record: Any,
) -> None:
    """Runs the cases worker by worker (torch, keras, native), never two workers at once."""
    request = {
        **request,
        "job": "infer",
        "batch_sizes": list(options.batch_sizes),
        "min_time": options.min_time,
        "max_time": options.max_time,
        "max_runs": options.max_runs,
    }
    run_grouped(
        request,
        cases,
        lambda case: RUNTIMES[case.split("/", 1)[0]].worker,
        WORKERS,
        workdir,
        case_timeout=options.case_timeout,
        on_case=lambda case, result: on_record(infer_record(case, result, settings)),
    )
