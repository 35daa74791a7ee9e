"""The distributed section's chart: samples/s against workers, one line per launcher and scaling, with
the ideal (linear from one worker) dashed."""

from __future__ import annotations

from typing import Any

from bakeoff.report.plots.figure import figure, to_svg

# Launchers measured from two workers on: the one-worker line they start from.
ONE_WORKER = {"mwms": "mirrored", "ray-tf": "mirrored", "ray-torch": "torchrun"}


def scaling(distributed: dict[str, Any] | None) -> str | None:
    rows = (distributed or {}).get("table") or []
    if not rows:
        return None
    lines: dict[str, list[tuple[int, float]]] = {}
    singles = {r["launcher"]: r for r in rows if r["workers"] == 1}
    for r in rows:
        key = f"{r['launcher']} ({r['scaling']})"
        lines.setdefault(key, []).append((r["workers"], r["samples_per_s"]))
    with figure(6.4, 3.6) as (fig, ax):
        for key, points in lines.items():
            launcher = key.split(" ")[0]
            base = singles.get(launcher) or singles.get(ONE_WORKER.get(launcher, launcher))
            if base is not None and all(n > 1 for n, _ in points):
                points = [(1, base["samples_per_s"]), *points]
            points.sort()
            ax.plot([n for n, _ in points], [v for _, v in points], marker="o", label=key)
        top = max(r["workers"] for r in rows)
        for base in singles.values():
            ax.plot(
                [1, top], [base["samples_per_s"], top * base["samples_per_s"]], linestyle=":", color="grey"
            )
        ax.set_xlabel("workers (dotted: linear from one worker)")
        ax.set_ylabel("samples/s (median)")
        ax.set_xticks(sorted({r["workers"] for r in rows}))
        ax.legend(fontsize=8)
        return to_svg(fig)
