"""A/A test: the same config run several times must give the same verdict and no regressions.

Runs `bakeoff run MODEL --quick` (or the default run with --full) N times on this machine, then
`bakeoff compare` of every pair, and prints per run its length, the stages the machine guard found
busy and every verdict dimension's winner, then per pair the regressions flagged. Targets: 0
regressions in every pair, and every dimension's winner the same in every run ("no winner" counts as
a winner: it must not flip either).

Usage: .venv/bin/python benchmarks/aa_test.py [--runs 5] [--model simplenet] [--full] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def bakeoff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bakeoff", *args], capture_output=True, text=True, timeout=1800
    )


def one_run(model: str, out: Path, full: bool) -> Path:
    before = {p for p in out.iterdir()} if out.exists() else set()
    done = bakeoff("run", model, "--out", str(out), *([] if full else ["--quick"]))
    (run,) = [p for p in out.iterdir() if p.is_dir() and p not in before]
    if done.returncode not in (0, 1):  # 1: a check failed, the run still stands
        raise SystemExit(f"bakeoff run failed: {done.stderr.strip()[-500:]}")
    return run


def summary(run: Path) -> dict[str, Any]:
    results = json.loads((run / "results.json").read_text())
    info = json.loads((run / "run.json").read_text())
    dims = results["verdict"]["dimensions"]
    return {
        "seconds": info.get("seconds"),
        "busy": sorted(s for s, q in (info.get("guard") or {}).items() if q.get("noisy")),
        "winners": {d["name"]: d["winner"] or "none" for d in dims},
        "overall": results["verdict"]["overall"] or "none",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--model", default="simplenet")
    parser.add_argument("--full", action="store_true", help="the default run instead of --quick")
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bakeoff-aa-") as tmp:
        out = args.out or Path(tmp)
        runs = []
        for index in range(args.runs):
            print(f"run {index + 1} of {args.runs} ...", file=sys.stderr, flush=True)
            runs.append(one_run(args.model, out, args.full))
        seen = [summary(r) for r in runs]
        dims = list(seen[0]["winners"])
        print(f"{'run':28} {'s':>6}  {'busy':12} " + " ".join(f"{d:>11}" for d in dims) + "  overall")
        for run, s in zip(runs, seen, strict=True):
            winners = " ".join(f"{s['winners'].get(d, '-'):>11}" for d in dims)
            print(
                f"{run.name:28} {s['seconds']:6.1f}  {','.join(s['busy']) or '-':12} "
                f"{winners}  {s['overall']}"
            )
        identical = all(
            s["winners"] == seen[0]["winners"] and s["overall"] == seen[0]["overall"] for s in seen
        )
        worst = 0
        for a, b in itertools.combinations(runs, 2):
            done = bakeoff("compare", str(a), str(b), "--json")
            result = json.loads(done.stdout)
            flagged = [
                f"{r['stage']} {r['case']}" + (f" batch {r['batch']}" if r.get("batch") else "")
                for r in result["speed"]
                if r["verdict"] == "regression"
            ]
            worst = max(worst, result["regressions"])
            print(f"compare {a.name} {b.name}: {result['regressions']} regression(s) {'; '.join(flagged)}")
        print(f"winners identical in all {len(runs)} runs: {'yes' if identical else 'NO'}")
        print(f"most regressions flagged by one A/A compare: {worst}")
        return 0 if identical and worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
