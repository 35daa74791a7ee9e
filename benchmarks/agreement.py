"""Do bakeoff's inference medians agree with a plain loop anyone would write? (target: within 5%)

For ONNX Runtime, LiteRT and TorchScript at batch 1 and 256, in one fresh process per case (the
runtime's own worker kind), the artifact bakeoff exported is timed two ways, interleaved round by round
(A B, then B A, block by block until each side has timed --round-s): bakeoff's own path (its
loader, its bound call, `measure` with the stage's default budget) and an independent loop (the
runtime's own API, loaded by hand with the same threads, the same input array, `time.perf_counter`
around each call, as many calls as bakeoff made). The ratio is the median over rounds of bakeoff's
round median over the plain loop's in the same round (the two sides of a round share the machine's
state, which on a shared VM swings within seconds), with a bootstrap CI over rounds; the pooled
medians' ratio is printed beside it, and the worst per-round ratio last.

Usage: .venv/bin/python benchmarks/agreement.py [--run RUN_DIR] [--rounds 20] [--round-s 0.1]
Without --run, `bakeoff infer simplenet --quick` makes the artifacts first (about half a minute).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CASES = (
    ("onnxruntime", "torch-onnx", "native"),
    ("onnxruntime", "keras-onnx", "native"),
    ("litert", "keras-tflite-fp32", "native"),
    ("torchscript", "torch-torchscript", "torch"),
)
SIZES = (1, 256)
TARGET = 0.05

CASE = r"""
import json, sys, time
from functools import partial
import numpy as np

request = json.loads(sys.argv[1])
from bakeoff.measure.timer import measure
from bakeoff.runtimes import bind
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.export.shared import ExportJob
from bakeoff.stages.export.verify import load_artifact
from bakeoff.stages.infer.inference import InferOptions, _batch, _scope, prewarm

job = ExportJob.from_request(request["job"])
threads, runtime, artifact = job.threads, request["runtime"], ARTIFACTS[request["artifact"]]
prewarm(request["worker"], threads)
predict = load_artifact(job, artifact, runtime)
path = str(path_of(job.root, artifact))


def plain_onnxruntime():
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    def prepare(x):
        feed = {name: x}
        return lambda: sess.run(None, feed)
    return prepare


def plain_litert():
    from ai_edge_litert.interpreter import Interpreter
    def prepare(x):
        it = Interpreter(model_path=path, num_threads=threads)
        index = it.get_input_details()[0]["index"]
        it.resize_tensor_input(index, x.shape, strict=False)
        it.allocate_tensors()
        out = it.get_output_details()[0]["index"]
        def call():
            it.set_tensor(index, x)
            it.invoke()
            return it.get_tensor(out)
        return call
    return prepare


def plain_torchscript():
    import torch
    torch.set_num_threads(threads)
    model = torch.jit.load(path, map_location="cpu").eval()
    def prepare(x):
        def call():  # host array in, host array out, as every runtime's call in bakeoff
            return model(torch.from_numpy(x)).numpy()
        return call
    return prepare


PLAIN = {"onnxruntime": plain_onnxruntime, "litert": plain_litert, "torchscript": plain_torchscript}
prepare = PLAIN[runtime]()
scope = _scope(request["worker"])  # as the infer job holds it (torch: inference mode); kept referenced:
scope.__enter__()  # a dropped torch.inference_mode object leaves the mode
defaults = InferOptions()
xs = job.inputs("val", artifact)
out = {}
for size in request["sizes"]:
    feed = _batch(xs, size)
    plain = prepare(feed[0])
    ours, theirs = [], []

    def bakeoff_side():
        m = measure(bind(predict, feed), min_time=defaults.min_time, max_time=defaults.max_time,
                    max_runs=defaults.max_runs)
        return m.times

    def plain_side(n):
        for _ in range(3):  # measure's warm-up
            plain()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            plain()
            times.append(time.perf_counter() - t0)
        return times

    for round_ in range(request["rounds"]):
        # A round alternates blocks (bakeoff's measure, then as many plain calls, then the reverse)
        # until each side has timed ROUND_S: one block of 250 calls of 10 us is too short a window
        # to cancel the machine's swings, and the per-round ratio scattered by +-10% at batch 1.
        b, p, forward, block = [], [], round_ % 2 == 0, defaults.max_runs
        while min(sum(b), sum(p)) < request["round_s"]:
            if forward:
                mine = bakeoff_side()
                p += plain_side(len(mine))
            else:
                p += plain_side(block)
                mine = bakeoff_side()
            b += mine
            block, forward = len(mine), not forward
        ours.append(b)
        theirs.append(p)
    # Side by side within a round, the machine's state (here its speed swings ~2x within seconds) is
    # shared: the ratio of each round's medians cancels it, the ratio of pooled medians would not.
    ratios = np.array([np.median(b) / np.median(p) for b, p in zip(ours, theirs)])
    boot = np.median(np.random.default_rng(0).choice(ratios, (2000, ratios.size)), axis=1)
    out[str(size)] = {"bakeoff_s": float(np.median(np.concatenate(ours))),
                      "plain_s": float(np.median(np.concatenate(theirs))),
                      "ratio": float(np.median(ratios)),
                      "ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
                      "calls": [sum(map(len, ours)), sum(map(len, theirs))]}
print(json.dumps(out))
"""


def make_run(out: Path) -> Path:
    print("making artifacts: bakeoff infer simplenet --quick ...", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-m", "bakeoff", "infer", "simplenet", "--quick", "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def job_of(run: Path) -> dict[str, Any]:
    from bakeoff.spec.graph import build_graph
    from bakeoff.spec.load import from_dict
    from bakeoff.stages.export.exporter import job_request
    from bakeoff.stages.export.stage import artifacts_root

    info = json.loads((run / "run.json").read_text())
    graph = build_graph(from_dict(info["spec"], source=str(run / "run.json")))
    return job_request(graph, artifacts_root(run), int(info["options"]["threads"]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, help="a run directory with exported artifacts")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--round-s", type=float, default=0.1, help="seconds each side times per round (default 0.1)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bakeoff-agreement-") as tmp:
        run = args.run or make_run(Path(tmp))
        job = job_of(run)
        rows = []
        for runtime, artifact, worker in CASES:
            request = {
                "job": job,
                "runtime": runtime,
                "artifact": artifact,
                "worker": worker,
                "sizes": list(SIZES),
                "rounds": args.rounds,
                "round_s": args.round_s,
            }
            done = subprocess.run(
                [sys.executable, "-c", CASE, json.dumps(request)], capture_output=True, text=True, timeout=600
            )
            if done.returncode:
                print(
                    f"{runtime}/{artifact}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr
                )
                continue
            for size, r in json.loads(done.stdout.strip().splitlines()[-1]).items():
                rows.append((f"{runtime}/{artifact}", int(size), r))
    print(
        f"{'case':34} {'batch':>5} {'bakeoff us':>11} {'plain us':>10} {'ratio':>7} {'95% CI':>13} "
        f"{'pooled':>7}  calls"
    )
    for case, size, r in rows:
        ci = f"{r['ci'][0]:.3f}-{r['ci'][1]:.3f}"
        print(
            f"{case:34} {size:5d} {r['bakeoff_s'] * 1e6:11.1f} {r['plain_s'] * 1e6:10.1f} "
            f"{r['ratio']:7.3f} {ci:>13} {r['bakeoff_s'] / r['plain_s']:7.3f}  {r['calls']}"
        )
    if not rows:
        return 1
    worst = max(rows, key=lambda row: abs(row[2]["ratio"] - 1))
    ratio = worst[2]["ratio"]
    verdict = "within" if abs(ratio - 1) <= TARGET else "OUTSIDE"
    print(f"worst ratio {ratio:.3f} ({worst[0]} batch {worst[1]}): {verdict} the ±{TARGET:.0%} target")
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    sys.exit(main())
