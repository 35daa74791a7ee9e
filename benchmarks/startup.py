"""Times `bakeoff --help` (target: under 1 s) and checks that it loads neither torch nor TensorFlow.

Usage: .venv/bin/python benchmarks/startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BAKEOFF = Path(sys.executable).parent / "bakeoff"
PROBE = (
    "import sys, runpy; sys.argv = ['bakeoff', '--help']\n"
    "try:\n    runpy.run_module('bakeoff', run_name='__main__')\nexcept SystemExit:\n    pass\n"
    "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'numpy', 'pydantic') if m in sys.modules]\n"
    "print('HEAVY', ','.join(heavy), file=sys.stderr)\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run([str(BAKEOFF), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    heavy = probe.stderr.strip().split("HEAVY", 1)[-1].strip() or "none"
    q = statistics.quantiles(times, n=4)
    print(
        f"bakeoff --help: median {statistics.median(times) * 1000:.0f} ms, "
        f"IQR {(q[2] - q[0]) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms over {len(times)} runs (target < 1000 ms)"
    )
    print(f"heavy modules imported by --help: {heavy}")


if __name__ == "__main__":
    main()
