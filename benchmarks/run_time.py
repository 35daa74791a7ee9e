"""Wall time of the main job, all five stages: `bakeoff run` (target <= 180 s) and `--quick` (<= 45 s).

Each is run `--repeat` times into a throw-away directory; the first run after an install also pays
for torch.compile's cold cache, so it is reported apart from the rest.

Usage: .venv/bin/python benchmarks/run_time.py [--repeat 2] [--model simplenet] [--only quick|full]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAKEOFF = Path(sys.executable).parent / "bakeoff"
# The time-to-verdict targets of the report issue, for every stage including export and inference.
TARGETS = {"default": 180.0, "--quick": 45.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--model", default="simplenet")
    parser.add_argument("--only", choices=("quick", "full"), help="Time one of the two variants.")
    args = parser.parse_args()
    for variant, target in TARGETS.items():
        if args.only and (variant == "--quick") != (args.only == "quick"):
            continue
        times = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as out:
                extra = [] if variant == "default" else [variant]
                start = time.perf_counter()
                proc = subprocess.run(
                    [str(BAKEOFF), "run", args.model, "--out", out, *extra],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                times.append(time.perf_counter() - start)
                if proc.returncode != 0:
                    print(f"{variant}: exit {proc.returncode}\n{proc.stderr[-1500:]}")
        verdict = "within" if max(times) <= target else "OVER"
        shown = ", ".join(f"{t:.1f}" for t in times)
        print(
            f"bakeoff run {args.model} {'' if variant == 'default' else variant}: {shown} s "
            f"({verdict} the {target:.0f} s target)"
        )


if __name__ == "__main__":
    main()
