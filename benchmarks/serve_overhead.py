"""Serving efficiency of each model server against its two limits, at concurrency 64.

For every server (bakeoff's TF Serving API server, Triton, TorchServe, Ray Serve) and model:

1. The server (HTTP, dynamic batching up to 64 rows, 2 ms delay, 1 runtime thread) on the model: closed
   loop, 64 clients, one sample per request, over the protocol the serve stage loads it with.
2. The stack's own ceiling: the same server stack answering a no-op model (zeros of the output's shape;
   every launcher's `options["noop"]`), same protocol and payload.
3. The compute ceiling: the runtime the server runs, in a process of its own with the same thread count,
   on the same artifact, at the batch size the server actually formed (rounded mean rows per model call),
   samples/s = rows per call / time per call:

   * tfserving: TensorFlow on the SavedModel signature (keras-savedmodel); batch sizes from its /metrics
     (bakeoff_tfserving_batch_rows histogram, bakeoff's own bookkeeping).
   * triton: ONNX Runtime of the Triton env, the one its python backend runs (torch-onnx); batch sizes
     from Triton's statistics API (inference_count / execution_count, and the batch_stats histogram).
   * torchserve: TorchScript, torch.jit.load (torch-torchscript); batch sizes from the worker's
     PredictionTime metric lines in TorchServe's logs (one per batch, carrying its requests' ids).
   * ray: ONNX Runtime of this env (torch-onnx, as ray_app runs it); batch sizes from Ray Serve's
     serve_actual_batch_size histogram, scraped from the node's Prometheus export.

   Where a server's batch sizes cannot be read, the record says so and the compute ceiling is taken at the
   largest batch the server may form (64): an upper bound on compute, so the efficiency is a lower bound.

Target (issue 14): bakeoff's own server reaches at least 50% of the lower of (2) and (3) on simplenet and
lenet; the other servers are reported against the same two limits. The load generator's own ceiling
against its no-op endpoint is measured first and printed with the table: a stack ceiling near it is the
generator's limit, not the stack's. On a shared 2-core machine every number is depressed by the
neighbours' load (the load average is printed); the ratios are what matter.

Usage: .venv/bin/python benchmarks/serve_overhead.py [--models simplenet,lenet]
       [--servers tfserving,triton,torchserve,ray] [--run RUN_DIR ...] [--duration 5] [--json FILE]
A RUN_DIR needs the export stage's keras-savedmodel, torch-onnx and torch-torchscript; for a model with no
--run, one is made with `bakeoff run MODEL --stages export --quick --artifacts ...` under --runs-out.
Every server is stopped (its whole process group) before the next starts, also on error and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.spec.graph import Graph
from bakeoff.spec.load import resolve
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.serve import load
from bakeoff.stages.serve.protocols import codec
from bakeoff.stages.serve.servers import _http, triton_env
from bakeoff.stages.serve.servers import launcher as get_launcher
from bakeoff.stages.serve.servers.base import RunningServer, ServeModel
from bakeoff.stages.serve.stage import (
    _specs,
    kill_left,
    layout_for,
    make_payload,
    pick_http,
    processes_left,
)

CONCURRENCY = 64
MAX_BATCH = 64
MAX_DELAY_MS = 2.0
THREADS = 1
SERVERS = ("tfserving", "triton", "torchserve", "ray")
MODELS = ("simplenet", "lenet")
EXPORT_ARTIFACTS = "keras-savedmodel,torch-onnx,torch-torchscript"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# One model call of a runtime, timed in a process of its own. Imports nothing from bakeoff: the Triton
# env's interpreter runs it too. argv: kind, artifact path, inputs (.npz, one sample), rows, seconds, threads.
IN_PROCESS = r"""
import json, sys, time
import numpy as np
kind, path, xfile = sys.argv[1], sys.argv[2], sys.argv[3]
rows, duration, threads = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
with np.load(xfile) as z:
    x = {k: np.repeat(z[k], rows, axis=0) for k in z.files}
if kind == "tf":
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    fn = tf.saved_model.load(path).signatures["serving_default"]
    feed = {k: tf.constant(v) for k, v in x.items()}
    def call():
        next(iter(fn(**feed).values())).numpy()
    runtime = "TensorFlow " + tf.__version__
elif kind == "onnx":
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: next(iter(x.values()))}
    names = [session.get_outputs()[0].name]
    def call():
        session.run(names, feed)
    runtime = "ONNX Runtime " + ort.__version__
elif kind == "torchscript":
    import torch
    torch.set_num_threads(threads)
    model = torch.jit.load(path, map_location="cpu").eval()
    tensor = torch.as_tensor(next(iter(x.values())))
    def call():
        with torch.inference_mode():
            model(tensor)
    runtime = "TorchScript (torch " + torch.__version__ + ")"
else:
    raise SystemExit("unknown runtime " + kind)
for _ in range(20):
    call()
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < duration:
    call()
    n += 1
print(json.dumps({"calls": n, "seconds": time.perf_counter() - t0, "runtime": runtime}))
"""


# ------------------------------------------------------------------------------------------- the runs


def serve_model(name: str, graph: Graph, root: Path, work: Path, noop: bool) -> ServeModel:
    inputs, outputs = _specs(graph)
    options: dict[str, Any] = {"noop": noop}
    if name == "tfserving":
        options["max_queue"] = 4096
    return ServeModel(
        name=graph.spec.name.replace("_", "-") or "model",
        artifacts=root,
        inputs=inputs,
        outputs=outputs,
        workdir=work / f"{name}-{'noop' if noop else 'model'}",
        batching=True,
        max_batch_size=MAX_BATCH,
        max_delay_ms=MAX_DELAY_MS,
        threads=THREADS,
        options=options,
    )


def serve_and_drive(
    name: str, graph: Graph, root: Path, work: Path, noop: bool, duration: float
) -> dict[str, Any]:
    """Start the server, warm it, drive it closed loop at CONCURRENCY for `duration`, read the batches it
    formed, stop it (its whole process group, whatever happens)."""
    model = serve_model(name, graph, root, work, noop)
    model.workdir.mkdir(parents=True, exist_ok=True)
    launcher = get_launcher(name)
    reason = launcher.unavailable()
    if reason:
        raise BakeoffError(reason)
    began = time.monotonic()
    running = launcher.start(model)
    pgid = running.pid
    try:
        start_s = time.monotonic() - began
        endpoint, variant = pick_http(running)
        feed = layout_for(running, make_payload(graph, rows=1))
        target = load.HttpTarget.of(
            endpoint.address, codec(endpoint.protocol, variant).encode(endpoint, feed)
        )
        warm = load.closed_loop(target, CONCURRENCY, 1.0)
        before = {"how": "not read for the no-op model"} if noop else formed_batches(name, running)
        result = load.closed_loop(target, CONCURRENCY, duration)
        after = before if noop else formed_batches(name, running, served=1 + warm.ok + result.ok)
    finally:
        running.stop()
        if processes_left(pgid):
            kill_left(pgid)
    batches = batch_delta(before, after)
    return {
        "rps": result.achieved_rps,
        "p50_ms": result.percentile(50) * 1000,
        "p99_ms": result.percentile(99) * 1000,
        "errors": result.failed,
        "protocol": endpoint.protocol + (f" ({variant})" if variant else ""),
        "layout": running.extra.get("layout", "channels_last" if name == "tfserving" else "channels_first"),
        "artifact": running.extra.get("artifact"),
        "implementation": running.implementation,
        "start_s": round(start_s, 1),
        "batches": batches,
    }


# --------------------------------------------------------------------------- formed batch sizes, per server


def formed_batches(name: str, running: RunningServer, served: int | None = None) -> dict[str, Any]:
    """Cumulative rows and model calls so far, as the server reports them: {'rows', 'calls', 'how',
    'histogram'?}; {'how': why not} when it cannot say. `served`: the requests answered so far (Ray's
    metrics arrive late: it waits until they account for them)."""
    try:
        if name == "tfserving":
            return _tfserving_batches(running)
        if name == "triton":
            return _triton_batches(running)
        if name == "torchserve":
            return _torchserve_batches(running)
        if name == "ray":
            return _ray_batches(running, served)
    except Exception as exc:  # a server that cannot say is a finding, not a crash
        return {"how": f"could not read: {type(exc).__name__}: {exc}"[:300]}
    return {"how": "unknown server"}


def _get(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode("utf-8", "replace"))


def _prometheus_sum(text: str, metric: str) -> float | None:
    values = [float(m) for m in re.findall(rf"^{metric}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)]
    return sum(values) if values else None


def _tfserving_batches(running: RunningServer) -> dict[str, Any]:
    text = _get(running.extra["metrics_url"])
    rows = _prometheus_sum(text, "bakeoff_tfserving_batch_rows_sum")
    calls = _prometheus_sum(text, "bakeoff_tfserving_batch_rows_count")
    if rows is None or calls is None:
        return {"how": "bakeoff_tfserving_batch_rows is not in /metrics"}
    return {
        "rows": rows,
        "calls": calls,
        "how": "the server's /metrics: bakeoff_tfserving_batch_rows histogram",
    }


def _triton_batches(running: RunningServer) -> dict[str, Any]:
    doc = json.loads(_get(running.extra["stats_url"]))
    rows = calls = 0.0
    histogram: dict[str, float] = {}
    for entry in doc.get("model_stats", []):
        rows += float(entry.get("inference_count", 0))
        calls += float(entry.get("execution_count", 0))
        for b in entry.get("batch_stats", []):
            size = str(b.get("batch_size"))
            histogram[size] = histogram.get(size, 0.0) + float(b.get("compute_infer", {}).get("count", 0))
    return {
        "rows": rows,
        "calls": calls,
        "histogram": histogram,
        "how": "Triton's statistics API (/v2/models/M/stats): inference_count / execution_count",
    }


def _torchserve_batches(running: RunningServer) -> dict[str, Any]:
    """TorchServe's worker emits one PredictionTime metric per batch, its dimensions ending with the ids of
    the requests in that batch; the frontend logs each such line ('result=[METRICS]PredictionTime...') in
    ts_log.log and on its stdout. One file is read, the first that has them, so none is counted twice."""
    logs = running.log_path.parent / "logs"
    time.sleep(0.5)  # log4j writes asynchronously
    for path in [logs / "ts_log.log", running.log_path, *sorted(logs.glob("*.log"))]:
        rows = calls = 0.0
        histogram: dict[str, float] = {}
        seen: set[str] = set()  # a batch's metric line can be logged more than once: count each batch once
        with contextlib.suppress(OSError), path.open("r", encoding="utf-8", errors="replace") as f:
            for line in f:
                if "PredictionTime." not in line:
                    continue
                ids = UUID.findall(line.split("PredictionTime.", 1)[1])
                n = len(ids)
                if n and ids[0] not in seen:
                    seen.add(ids[0])
                    rows += n
                    calls += 1
                    histogram[str(n)] = histogram.get(str(n), 0.0) + 1
        if calls:
            return {
                "rows": rows,
                "calls": calls,
                "histogram": histogram,
                "how": f"the worker's PredictionTime metric lines in TorchServe's {path.name} (one per batch,"
                " with its requests' ids)",
            }
    return {"how": f"no PredictionTime metric lines with request ids in {logs} or {running.log_path.name}"}


def _ray_metrics_url(running: RunningServer) -> str | None:
    """Ray's Prometheus export answers on a port of one of the cluster's processes (the dashboard agent):
    find the listening port whose /metrics has Ray's metrics."""
    import psutil

    if "ray_metrics_url" in running.extra:
        return str(running.extra["ray_metrics_url"])
    serve_port = int(running.extra["http"].rsplit(":", 1)[1])
    ports: set[tuple[int, int]] = set()  # (0 for the dashboard agent's ports, which hold the export; port)
    for p in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(p.pid) != running.pid:
                continue
            agent = any("agent" in part for part in p.info["cmdline"] or [])
            for c in p.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr.port != serve_port:
                    ports.add((0 if agent else 1, c.laddr.port))
    for _, port in sorted(ports):
        url = f"http://127.0.0.1:{port}/metrics"
        with contextlib.suppress(Exception):
            if "ray_" in _get(url, timeout=1.0):
                running.extra["ray_metrics_url"] = url
                return url
    return None


def _ray_batches(running: RunningServer, served: int | None) -> dict[str, Any]:
    url = _ray_metrics_url(running)
    if url is None:
        return {"how": "no Prometheus export found among the Ray cluster's listening ports"}
    deadline = time.monotonic() + (30.0 if served else 0.0)
    while True:
        text = _get(url)
        rows = _prometheus_sum(text, "ray_serve_actual_batch_size_sum")
        calls = _prometheus_sum(text, "ray_serve_actual_batch_size_count")
        if rows is not None and calls is not None and (not served or rows >= served):
            break
        if time.monotonic() > deadline:
            if rows is None or calls is None:
                return {"how": f"ray_serve_actual_batch_size is not in {url}"}
            break
        time.sleep(1.0)
    return {
        "rows": rows,
        "calls": calls,
        "lifetime": True,  # Ray reports every few seconds: the run's own delta is not readable in time
        "how": "Ray's serve_actual_batch_size histogram (the node's metrics export), over the replica's life "
        "(first inference, 1 s warm-up and the run, all at concurrency 64)",
    }


def batch_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Mean rows per model call over the run (or the server's life, where it reports late)."""
    if "rows" not in after:
        return {"how": after.get("how"), "mean_rows": None}
    lifetime = after.get("lifetime") or "rows" not in before
    rows = after["rows"] - (0 if lifetime else before["rows"])
    calls = after["calls"] - (0 if lifetime else before["calls"])
    out: dict[str, Any] = {"how": after["how"], "rows": rows, "calls": calls}
    out["mean_rows"] = rows / calls if calls else None
    if "histogram" in after:
        prev = {} if lifetime else before.get("histogram", {})
        hist = {k: v - prev.get(k, 0.0) for k, v in after["histogram"].items()}
        out["histogram"] = {k: v for k, v in sorted(hist.items(), key=lambda kv: int(kv[0])) if v > 0}
    return out


# ---------------------------------------------------------------------------------------- compute ceiling


def runtime_of(name: str, root: Path, served: dict[str, Any]) -> tuple[str, Path, str, dict[str, str] | None]:
    """(kind, artifact path, interpreter, environment) of the runtime `name` runs its model with."""
    if name == "tfserving":
        return "tf", path_of(root, ARTIFACTS["keras-savedmodel"]), sys.executable, None
    if name == "torchserve":
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
        return "torchscript", path_of(root, ARTIFACTS["torch-torchscript"]), sys.executable, env
    artifact = path_of(root, ARTIFACTS[served["artifact"] or "torch-onnx"])
    if name == "triton":
        install = triton_env.find()
        if install is None:
            raise BakeoffError(triton_env.missing_message(triton_env.env_dir()))
        return "onnx", artifact, str(install.python), _http.child_env()
    return "onnx", artifact, sys.executable, None


def in_process(
    name: str, graph: Graph, root: Path, served: dict[str, Any], rows: int, duration: float
) -> dict[str, Any]:
    """Samples/s of the server's runtime in a process of its own at `rows` per call."""
    kind, artifact, python, env = runtime_of(name, root, served)
    feed = make_payload(graph, rows=1)
    if served["layout"] == "channels_first":
        feed = {
            k: np.ascontiguousarray(v.transpose(0, 3, 1, 2)) if v.ndim == 4 else v for k, v in feed.items()
        }
    with tempfile.TemporaryDirectory() as tmp:
        x = Path(tmp) / "x.npz"
        np.savez(x, **feed)
        done = subprocess.run(
            [python, "-c", IN_PROCESS, kind, str(artifact), str(x), str(rows), str(duration), str(THREADS)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
    if done.returncode != 0:
        raise BakeoffError(f"the in-process {kind} run failed: {done.stderr.strip()[-500:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "rps": r["calls"] * rows / r["seconds"],
        "runtime": r["runtime"],
        "artifact": artifact.parent.name,
    }


# ------------------------------------------------------------------------------------------- per model


def measure(name: str, graph: Graph, root: Path, duration: float, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"server": name, "model": graph.spec.name, "concurrency": CONCURRENCY}
    try:
        served = serve_and_drive(name, graph, root, work, False, duration)
        stack = serve_and_drive(name, graph, root, work, True, duration)
        mean = served["batches"].get("mean_rows")
        rows = max(1, min(MAX_BATCH, round(mean))) if mean else MAX_BATCH
        compute = in_process(name, graph, root, served, rows, duration)
    except Exception as exc:  # one server's failure is recorded; the others are still measured
        out.update(status="failed", message=f"{type(exc).__name__}: {exc}"[:800])
        return out
    lower = min(stack["rps"], compute["rps"])
    out.update(
        status="ok",
        server_rps=served["rps"],
        server_p50_ms=served["p50_ms"],
        server_p99_ms=served["p99_ms"],
        server_errors=served["errors"],
        protocol=served["protocol"],
        implementation=served["implementation"],
        formed_batches=served["batches"],
        batch_sizes_reported=mean is not None,
        stack_ceiling_rps=stack["rps"],
        stack_errors=stack["errors"],
        stack_implementation=stack["implementation"],
        compute_ceiling_rps=compute["rps"],
        compute_batch_rows=rows,
        compute_runtime=f"{compute['runtime']} on {compute['artifact']}",
        limit="stack" if stack["rps"] <= compute["rps"] else "compute",
        efficiency=served["rps"] / lower if lower else None,
        target_met=bool(lower and served["rps"] >= 0.5 * lower),
    )
    return out


def run_dir_for(model: str, given: list[Path], out: Path) -> Path:
    """A run with the three artifacts: one of --run for this model, else a fresh `bakeoff run --stages
    export` under `out`."""
    for run in given:
        if json.loads((run / "run.json").read_text()).get("model") == model:
            return run
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    subprocess.run(
        [
            *(sys.executable, "-m", "bakeoff", "run", model, "--stages", "export", "--quick"),
            *("--artifacts", EXPORT_ARTIFACTS, "--out", str(out)),
        ],
        check=True,
        timeout=1200,
    )
    made = sorted(p for p in set(out.iterdir()) - before if (p / "run.json").is_file())
    if not made:
        raise BakeoffError(f"bakeoff run {model} --stages export made no run under {out}")
    return made[-1]


# ---------------------------------------------------------------------------------------------- output


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'model':10} {'server':10} {'server':>8} {'no-op':>8} {'compute':>8} {'at':>4} {'eff.':>5} "
        f"{'limit':8} {'p99 ms':>7}  formed batch (mean rows / how)"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        if r["status"] != "ok":
            lines.append(f"{r['model']:10} {r['server']:10} FAILED: {r['message'].splitlines()[0][:90]}")
            continue
        b = r["formed_batches"]
        formed = f"{b['mean_rows']:.1f}" if b.get("mean_rows") else f"not reported; compute at {MAX_BATCH}"
        mark = "" if r["target_met"] else " <50%"
        bound = "*" if r.get("stack_generator_bound") else " "
        lines.append(
            f"{r['model']:10} {r['server']:10} {r['server_rps']:8,.0f} {r['stack_ceiling_rps']:7,.0f}{bound} "
            f"{r['compute_ceiling_rps']:8,.0f} {r['compute_batch_rows']:4} {r['efficiency']:5.0%} "
            f"{r['limit']:8} {r['server_p99_ms']:7.1f}  {formed}{mark}"
        )
    lines.append(
        f"req/s at concurrency {CONCURRENCY}, one sample per request. no-op: the same stack answering zeros; "
        "compute: the server's runtime\nin-process at 'at' rows per call; eff.: server / the lower;"
        " * no-op within 80% of the generator's ceiling (the generator's limit, not the stack's)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated (default simplenet,lenet)"
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma-separated of tfserving,triton,torchserve,ray"
    )
    parser.add_argument("--run", type=Path, action="append", default=[], help="an exported run (repeatable)")
    parser.add_argument(
        "--runs-out", type=Path, default=Path(tempfile.gettempdir()) / "bakeoff-serve-overhead"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured load run")
    parser.add_argument("--json", type=Path, help="write every result (and the generator's ceiling) here")
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    bad = [s for s in servers if s not in SERVERS]
    if bad:
        parser.error(f"--servers: {', '.join(bad)} not in {', '.join(SERVERS)}")
    started = time.time()
    load_before = os.getloadavg()
    generator_rps, generator = load.ceiling(duration=min(args.duration, 3.0), concurrency=CONCURRENCY)
    print(
        f"load generator's ceiling against its no-op endpoint: {generator_rps:,.0f} req/s "
        f"(p99 {generator.percentile(99) * 1000:.1f} ms); load average {load_before[0]:.2f}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    for model in models:
        graph = resolve(model)
        root = run_dir_for(model, args.run, args.runs_out) / "artifacts"
        for name in servers:
            print(f"{model}: {name} ...", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"bakeoff-overhead-{name}-") as tmp:
                r = measure(name, graph, root, args.duration, Path(tmp))
            if r["status"] == "ok":
                r["stack_generator_bound"] = r["stack_ceiling_rps"] >= 0.8 * generator_rps
            results.append(r)
            print(json.dumps(r), flush=True)
    print()
    print(table(results))
    load_after = os.getloadavg()
    print(
        f"generator ceiling {generator_rps:,.0f} req/s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; {time.time() - started:.0f} s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "concurrency": CONCURRENCY,
                    "max_batch_size": MAX_BATCH,
                    "max_delay_ms": MAX_DELAY_MS,
                    "threads": THREADS,
                    "duration_s": args.duration,
                    "generator_ceiling_rps": generator_rps,
                    "generator_ceiling_p99_ms": generator.percentile(99) * 1000,
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                    "results": results,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
