"""Serving efficiency of bakeoff's TF Serving API server against its two limits, at concurrency 64.

1. The server (REST, dynamic batching) on the model: closed loop, 64 clients, one sample per request.
2. The stack's own ceiling: the same server answering a no-op model (zeros, no TensorFlow call).
3. The compute ceiling: TensorFlow in-process on the same SavedModel at the batch sizes the server actually
   formed (its /metrics batch histogram), samples/s = rows per batch / time per call.

Target: (1) reaches at least 50% of the lower of (2) and (3). For a model as small as simplenet the stack's
ceiling dominates. Prints one JSON object per model and a summary table. On a shared 2-core machine every
number is depressed by the neighbours' load; the ratios are what matter.

Usage: .venv/bin/python benchmarks/serve_overhead.py --run RUN_DIR [--run RUN_DIR ...] [--duration 5]
(each RUN_DIR has the export stage's keras-savedmodel; `bakeoff run lenet --stages export --quick
--artifacts keras-savedmodel` makes one.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bakeoff.npz import save_arrays
from bakeoff.spec.load import resolve
from bakeoff.stages.serve import load
from bakeoff.stages.serve.protocols import codec
from bakeoff.stages.serve.servers.base import ServeModel
from bakeoff.stages.serve.servers.tfserving import launcher
from bakeoff.stages.serve.stage import _specs, make_payload

CONCURRENCY = 64

IN_PROCESS = """
import sys, time, json
import numpy as np, tensorflow as tf
from bakeoff.npz import load_arrays
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
x = load_arrays(sys.argv[2])
rows = int(sys.argv[3])
feed = {k: tf.constant(np.repeat(v, rows, axis=0)) for k, v in x.items()}
for _ in range(20):
    fn(**feed)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < float(sys.argv[4]):
    next(iter(fn(**feed).values())).numpy()
    n += 1
print(json.dumps({"calls": n, "seconds": time.perf_counter() - t0}))
"""


def serve_and_drive(run: Path, model_name: str, noop: bool, duration: float, work: Path) -> dict[str, Any]:
    graph = resolve(model_name)
    inputs, outputs = _specs(graph)
    model = ServeModel(
        name=graph.spec.name,
        artifacts=run / "artifacts",
        inputs=inputs,
        outputs=outputs,
        workdir=work / ("noop" if noop else "model"),
        batching=True,
        max_batch_size=64,
        max_delay_ms=2.0,
        threads=1,
        options={"noop": noop, "max_queue": 4096},
    )
    running = launcher.start(model)
    try:
        endpoint = running.endpoint("tfserving-rest")
        payload = make_payload(graph, rows=1)
        target = load.HttpTarget.of(endpoint.address, codec("tfserving-rest").encode(endpoint, payload))
        load.closed_loop(target, CONCURRENCY, 1.0)  # warm-up
        before = _batches(running.extra["metrics_url"])
        result = load.closed_loop(target, CONCURRENCY, duration)
        after = _batches(running.extra["metrics_url"])
    finally:
        running.stop()
    rows, count = after[0] - before[0], after[1] - before[1]
    return {
        "rps": result.achieved_rps,
        "p50_ms": result.percentile(50) * 1000,
        "p99_ms": result.percentile(99) * 1000,
        "errors": result.failed,
        "mean_batch_rows": rows / count if count else None,
        "implementation": running.implementation,
    }


def _batches(url: str) -> tuple[float, float]:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    total = float(re.search(r"^bakeoff_tfserving_batch_rows_sum (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    count = float(re.search(r"^bakeoff_tfserving_batch_rows_count (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return total, count


def in_process(run: Path, model_name: str, rows: int, duration: float) -> float:
    """Samples/s of TensorFlow running the SavedModel in its own process at `rows` per call."""
    graph = resolve(model_name)
    with tempfile.TemporaryDirectory() as tmp:
        x = Path(tmp) / "x.npz"
        save_arrays(x, make_payload(graph, rows=1))
        savedmodel = run / "artifacts" / "keras-savedmodel" / "saved_model"
        done = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, str(savedmodel), str(x), str(rows), str(duration)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return float(r["calls"] * rows / r["seconds"])


def measure(run: Path, duration: float) -> dict[str, Any]:
    model_name = json.loads((run / "run.json").read_text())["model"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        served = serve_and_drive(run, model_name, False, duration, work)
        stack = serve_and_drive(run, model_name, True, duration, work)
    rows = max(1, round(served["mean_batch_rows"] or 1))
    compute = in_process(run, model_name, rows, duration)
    lower = min(stack["rps"], compute)
    return {
        "model": model_name,
        "concurrency": CONCURRENCY,
        "server_rps": served["rps"],
        "server_p99_ms": served["p99_ms"],
        "server_errors": served["errors"],
        "mean_batch_rows": served["mean_batch_rows"],
        "stack_ceiling_rps": stack["rps"],
        "compute_ceiling_rps": compute,
        "compute_batch_rows": rows,
        "limit": "stack" if stack["rps"] <= compute else "compute",
        "efficiency": served["rps"] / lower if lower else None,
        "target_met": bool(lower and served["rps"] >= 0.5 * lower),
        "implementation": served["implementation"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, action="append", required=True)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    started = time.time()
    results = [measure(run, args.duration) for run in args.run]
    for r in results:
        print(json.dumps(r))
    print(f"\n{'model':12} {'server':>9} {'stack':>9} {'compute':>9} {'batch':>6} {'eff.':>6}  limit")
    for r in results:
        print(
            f"{r['model']:12} {r['server_rps']:9,.0f} {r['stack_ceiling_rps']:9,.0f} "
            f"{r['compute_ceiling_rps']:9,.0f} {r['compute_batch_rows']:6} {r['efficiency']:6.0%}  "
            f"{r['limit']}{'' if r['target_met'] else '  (under the 50% target)'}"
        )
    print(f"({time.time() - started:.0f} s; req/s at concurrency {CONCURRENCY}, one sample per request)")


if __name__ == "__main__":
    main()
