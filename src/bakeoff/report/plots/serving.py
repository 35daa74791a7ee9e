"""The serving chart: p99 latency against offered load per server (the knee curve), with the SLO line."""

from __future__ import annotations

from typing import Any

from bakeoff.report.plots.figure import PALETTE, figure, log_axis, to_svg


def knee(serve: dict[str, Any] | None) -> str | None:
    rows = [r for r in (serve or {}).get("servers", []) if r["status"] == "ok" and r["knee"]]
    if not rows:
        return None
    slo = rows[0].get("slo_ms")
    with figure(6.4, 4.0) as (fig, ax):
        for i, r in enumerate(rows):
            points = [(k["offered_rps"], k["p99_ms"]) for k in r["knee"] if k["p99_ms"] is not None]
            if not points:
                continue
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(
                xs,
                ys,
                "-" if r["batching"] == "dynamic" else "--",
                marker="o",
                markersize=4,
                color=PALETTE[i % len(PALETTE)],
                label=f"{r['case']}" + (" (bakeoff's stand-in)" if "bakeoff" in r["implementation"] else ""),
            )
        if slo:
            ax.axhline(slo, color="#c62828", linewidth=0.8, linestyle=":", label=f"SLO p99 {slo:g} ms")
        log_axis(ax, "y")
        ax.set_xlabel("offered load, requests/s (open loop, Poisson)")
        ax.set_ylabel("p99 latency, ms (log)")
        ax.legend(fontsize=7, frameon=False)
        return to_svg(fig)
