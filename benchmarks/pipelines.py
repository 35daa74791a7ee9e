"""Runs the input-pipeline bake-off (torch DataLoader against tf.data) with its defaults and prints a table.

Usage: .venv/bin/python benchmarks/pipelines.py [--batch 64] [--batches 60] [--epochs 10] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bakeoff.stages.pipeline.pipelines import run_pipelines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bakeoff-pipelines-") as tmp:
        records = run_pipelines(
            Path(tmp), batch=args.batch, batches=args.batches, epochs=args.epochs, threads=args.threads
        )
    wall = time.perf_counter() - started
    header = (
        f"{'case':<24} {'fw':<6} {'samples/s':>10} {'IQR':>8} {'first batch':>12} "
        f"{'pass start':>11} {'batch p99':>10} {'CPU %':>6} {'RSS MB':>7}  status"
    )
    print(header)
    print("-" * len(header))
    for r in records:
        m = r["metrics"]
        if "samples_per_s" not in m:
            detail = r["message"] or ", ".join(f"{k}={v}" for k, v in m.items())
            print(f"{r['case']:<24} {r['framework'] or '-':<6} {r['status']}: {detail}")
            continue
        print(
            f"{r['case']:<24} {r['framework']:<6} {m['samples_per_s']:>10.0f} "
            f"{m['samples_per_s_stats']['iqr']:>8.0f} {m['first_batch_s'] * 1000:>9.1f} ms "
            f"{m['epoch_start_s']['median'] * 1000:>8.1f} ms {m['batch_s']['p99'] * 1000:>7.1f} ms "
            f"{m['cpu_percent_mean']:>6.0f} {m['peak_rss_mb']:>7.0f}  {r['status']} {r['message']}"
        )
    s = records[0]["settings"]
    print(
        f"\nbatch {s['batch']}, {s['batches']} batches a pass, 1 warm-up + {s['epochs']} timed passes, "
        f"{s['threads']} threads; samples/s and IQR over passes (first batch of each pass excluded); "
        f"first batch = build + first batch of the cold pass; wall {wall:.0f} s"
    )


if __name__ == "__main__":
    main()
