"""Measures what bakeoff's step timing adds to a training epoch (target: ratio <= 1.02 per framework).

For each framework, in its own process, an epoch of simplenet on MNIST is run alternately through
bakeoff's harness (torch: `time_loop`; Keras: fit with the StepTimer callback) and as a hand-written
tight loop of the same framework call (a bare for-loop; fit without callbacks). Epoch wall times are
interleaved so clock drift hits both; the ratio of medians comes with a bootstrap 95% CI.

Usage: .venv/bin/python benchmarks/overhead.py [--rounds 15] [--model simplenet]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

TORCH = """
import time, json, sys, torch
from bakeoff.frameworks.torch.build import build
from bakeoff.frameworks.torch.weights import load_weights
from bakeoff.frameworks.torch.parity import configure, loss_fn, to_torch_input
from bakeoff.measure.timer import time_loop
graph, weights, x, y, rounds, batch = setup()
configure(2)
model = build(graph); load_weights(model, graph, weights); model.train()
opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
X, Y = to_torch_input(x), torch.from_numpy(y)
n = len(Y) // batch
def step(b):
    s = slice(b * batch, (b + 1) * batch)
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(X[s]), Y[s], "cross_entropy", False)
    loss.backward(); opt.step()
    return loss
def harness():
    time_loop(step, n)
def tight():
    for b in range(n):
        step(b)
run(harness, tight, rounds)
"""

KERAS = """
import time, json, sys, keras
from bakeoff.frameworks.keras.build import build
from bakeoff.frameworks.keras.weights import load_weights
from bakeoff.frameworks.keras.parity import configure, loss_fn
from bakeoff.frameworks.keras.train import StepTimer
graph, weights, x, y, rounds, batch = setup()
configure(2)
model = build(graph); load_weights(model, graph, weights)
model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss=loss_fn("cross_entropy", False),
              jit_compile=False)
model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)  # trace once, outside the timing
def harness():
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[StepTimer()])
def tight():
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
run(harness, tight, rounds)
"""

COMMON = """
import time, json, sys
def setup():
    from bakeoff.spec.load import resolve
    from bakeoff.data.datasets import load
    from bakeoff.twins.canonical import canonical_weights
    graph = resolve(sys.argv[1])
    data = load(graph)
    batch = 64
    n = (data.n_train // batch) * batch
    return graph, canonical_weights(graph), data.x_train[0][:n], data.y_train[:n], int(sys.argv[2]), batch
def run(harness, tight, rounds):
    harness(); tight()  # warm both paths
    out = {"harness": [], "tight": []}
    for _ in range(rounds):
        for name, fn in (("harness", harness), ("tight", tight)):
            t0 = time.perf_counter(); fn(); out[name].append(time.perf_counter() - t0)
    print("RESULT", json.dumps(out))
"""


def run(framework: str, code: str, model: str, rounds: int) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", COMMON + code, model, str(rounds)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{framework} benchmark failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--model", default="simplenet")
    args = parser.parse_args()
    from bakeoff.measure.stats import ratio_ci, summarize

    started = time.perf_counter()
    for framework, code in (("torch", TORCH), ("keras", KERAS)):
        times = run(framework, code, args.model, args.rounds)
        ratio = ratio_ci(times["harness"], times["tight"])
        h, t = summarize(times["harness"]), summarize(times["tight"])
        verdict = "within target" if ratio.ratio <= 1.02 else "OVER the 1.02 target"
        print(
            f"{framework}: epoch {h.median * 1000:.1f} ms with harness vs {t.median * 1000:.1f} ms "
            "tight loop; "
            f"ratio {ratio.ratio:.3f} (95% CI {ratio.low:.3f}-{ratio.high:.3f}), n={h.n} each: {verdict}"
        )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
