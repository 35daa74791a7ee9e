"""The charts of the inference and artifact sections: latency per batch size (with the swatches that stand
for its lines in the table), throughput, cold start, and artifact size against quality with its numbered,
non-overlapping point labels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bakeoff.report.plots.figure import (
    COLORS,
    RUNTIME_PALETTE,
    count_axis,
    family_legend,
    figure,
    log_axis,
    to_svg,
)

# Markers a latency line can take within its runtime, each also drawn by `swatch` for the table.
LATENCY_MARKERS = ["o", "^", "s", "D", "v", "p", "h"]


def latency_styles(infer: dict[str, Any] | None) -> dict[str, tuple[str, str, str]]:
    """(colour, line style, marker) per inference case with timings: the colour names the runtime, the
    line style the side its artifact comes from (solid PyTorch, dashed TensorFlow), the marker tells the
    artifacts of one runtime apart. The chart draws these; the table beside it shows them as swatches."""
    cases = [c for c in (infer or {}).get("cases", []) if c["status"] == "ok" and c["batches"]]
    runtimes = list(dict.fromkeys(c["runtime"] for c in cases))
    colors = {r: RUNTIME_PALETTE[i % len(RUNTIME_PALETTE)] for i, r in enumerate(runtimes)}
    seen: dict[str, int] = {}
    styles = {}
    for c in cases:
        k = seen[c["runtime"]] = seen.get(c["runtime"], -1) + 1
        line = {"PyTorch": "-", "TensorFlow": "--"}.get(c["family"], ":")
        styles[c["case"]] = (colors[c["runtime"]], line, LATENCY_MARKERS[k % len(LATENCY_MARKERS)])
    return styles


def latency_by_batch(infer: dict[str, Any] | None) -> str | None:
    """p50 latency per batch size, one line per runtime/artifact in the style `latency_styles` gives it.
    No legend: with a dozen lines it would cover them; the table beside the chart carries each line's
    swatch instead."""
    cases = [c for c in (infer or {}).get("cases", []) if c["status"] == "ok" and c["batches"]]
    if not cases:
        return None
    styles = latency_styles(infer)
    with figure(6.4, 4.2) as (fig, ax):
        for c in cases:
            color, line, marker = styles[c["case"]]
            sizes = sorted(c["batches"])
            ax.plot(
                sizes,
                [c["batches"][b]["p50_ms"] for b in sizes],
                line,
                marker=marker,
                markersize=5,
                linewidth=1.2,
                color=color,
                markerfacecolor="white" if line == "--" else color,
            )
        log_axis(ax, "x", base=2)
        log_axis(ax, "y")
        ax.set_xlabel("batch size (log)")
        ax.set_ylabel("p50 latency, ms (log)")
        return to_svg(fig)


def swatch(style: tuple[str, str, str]) -> str:
    """A small inline SVG of one chart line (colour, dash, marker), to stand for it in a table."""
    color, line, marker = style
    dash = {"--": ' stroke-dasharray="5 3"', ":": ' stroke-dasharray="1.5 2"'}.get(line, "")
    fill = "white" if line == "--" else color
    cx, cy, r = 17.0, 6.0, 3.6

    def polygon(sides: int, turn: float) -> str:
        points = " ".join(
            f"{cx + r * math.sin(turn + 2 * math.pi * k / sides):.2f},"
            f"{cy - r * math.cos(turn + 2 * math.pi * k / sides):.2f}"
            for k in range(sides)
        )
        return f'<polygon points="{points}"'

    shape = {
        "o": f'<circle cx="{cx}" cy="{cy}" r="{r - 0.4}"',
        "^": polygon(3, 0.0),
        "v": polygon(3, math.pi),
        "s": polygon(4, math.pi / 4),
        "D": polygon(4, 0.0),
        "p": polygon(5, 0.0),
        "h": polygon(6, 0.0),
    }.get(marker, f'<circle cx="{cx}" cy="{cy}" r="{r - 0.4}"')
    return (
        '<svg class="swatch" width="34" height="12" viewBox="0 0 34 12" aria-hidden="true">'
        f'<line x1="1" y1="{cy}" x2="33" y2="{cy}" stroke="{color}" stroke-width="1.5"{dash}/>'
        f'{shape} fill="{fill}" stroke="{color}" stroke-width="1.2"/></svg>'
    )


def throughput(infer: dict[str, Any] | None) -> str | None:
    cases = [c for c in (infer or {}).get("cases", []) if c["status"] == "ok" and c["batches"]]
    if not cases:
        return None
    size = max(max(c["batches"]) for c in cases)
    rows = sorted(
        (c for c in cases if size in c["batches"]), key=lambda c: -c["batches"][size]["samples_per_s"]
    )
    with figure(6.4, max(2.4, 0.25 * len(rows) + 1)) as (fig, ax):
        ax.barh(
            [c["case"] for c in rows],
            [c["batches"][size]["samples_per_s"] for c in rows],
            color=[COLORS[c["family"]] for c in rows],
        )
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        count_axis(ax)
        ax.set_xlabel(f"samples/s at batch {size}")
        family_legend(ax, [c["family"] for c in rows])
        return to_svg(fig)


def cold_start(infer: dict[str, Any] | None) -> str | None:
    cases = [c for c in (infer or {}).get("cases", []) if c["status"] == "ok" and c.get("load_s") is not None]
    if not cases:
        return None
    """Load time and first call per case as two points on one log axis. Stacked bars on a log axis (as
    this was) draw the second part shorter the longer the first one is; points keep both honest."""
    with figure(6.4, max(2.4, 0.25 * len(cases) + 1)) as (fig, ax):
        y = np.arange(len(cases))
        load = np.array([c["load_s"] * 1e3 for c in cases])
        first = np.array([(c.get("first_call_s") or 0) * 1e3 for c in cases])
        floor = min([*load[load > 0], *first[first > 0], 1.0]) / 2  # a zero still gets a place
        ax.hlines(y, floor, np.maximum(load, first).clip(floor), color="#e0e0e0", zorder=1)
        ax.scatter(load.clip(floor), y, color="#78909c", marker="o", s=22, label="load", zorder=3)
        ax.scatter(first.clip(floor), y, color="#263238", marker="D", s=18, label="first call", zorder=3)
        ax.set_yticks(y, [c["case"] for c in cases])
        ax.invert_yaxis()
        log_axis(ax, "x")
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("ms, log (warm worker: framework already imported)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return to_svg(fig)


def artifacts(export: dict[str, Any] | None, task: str | None = None) -> str | None:
    """Size against quality kept, one numbered point per artifact (the number of its row in the table
    beside the chart). Points closer than a few pixels share one label ("2, 5"), and labels are placed
    where they cover no other label and no point. For regression the y axis is the MSE relative to
    fp32, where lower is better and no gate applies."""
    regression = task == "regression"
    points = [
        (number, r)
        for number, r in enumerate((export or {}).get("artifacts", []), 1)
        if r["status"] == "ok" and r.get("size_bytes") and r.get("relative_accuracy") is not None
    ]
    if not points:
        return None
    with figure(6.4, 3.8) as (fig, ax):
        xy = [(r["size_bytes"] / 1024, 100 * r["relative_accuracy"]) for _, r in points]
        for side, marker, size, fill in (
            ("PyTorch", "o", 22, True),
            ("TensorFlow", "D", 40, False),
            ("?", "s", 22, True),
        ):
            mine = [i for i, (_, r) in enumerate(points) if r["family"] == side]
            if mine:  # TensorFlow hollow and larger, so a PyTorch point under it still shows
                ax.scatter(
                    [xy[i][0] for i in mine],
                    [xy[i][1] for i in mine],
                    marker=marker,
                    s=size,
                    facecolors=COLORS[side] if fill else "none",
                    edgecolors=COLORS[side],
                    linewidths=1.3,
                    label=f"from {side}" if side != "?" else "other",
                    zorder=3,
                )
        if regression:
            ax.axhline(100, color="#555", linestyle=":", label="fp32")
            ax.set_ylabel("validation MSE, % of fp32 (lower is better)")
        else:
            ax.axhline(99, color="#c62828", linestyle="--", label="99% gate")
            ax.set_ylabel("accuracy, % of fp32")
        log_axis(ax, "x")
        ax.set_xlabel("size on disk, KB (log)")
        ax.margins(x=0.15, y=0.2)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        _number_points(fig, ax, xy, [number for number, _ in points])
        return to_svg(fig)


def _number_points(fig: Any, ax: Any, xy: list[tuple[float, float]], numbers: list[int]) -> None:
    """Labels each point (or cluster of points within CLUSTER_PX) with its number, at the first of a ring
    of offsets where the label overlaps no placed label and no point; failing that, further out with a
    leader line. The layout is frozen first, so the pixel positions checked are the ones drawn."""
    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    pixels = ax.transData.transform(np.asarray(xy, dtype=float))
    clusters: list[list[int]] = []
    for i in np.lexsort((pixels[:, 1], pixels[:, 0])):
        for cluster in clusters:
            if np.hypot(*(pixels[cluster[0]] - pixels[i])) <= CLUSTER_PX:
                cluster.append(int(i))
                break
        else:
            clusters.append([int(i)])
    taken = [_box(p, 4) for p in pixels]  # every marker, a little padded
    frame = ax.get_window_extent(renderer)
    for cluster in clusters:
        text = ", ".join(str(numbers[i]) for i in sorted(cluster, key=lambda i: numbers[i]))
        for radius, leader in ((7, False), (16, True), (28, True), (42, True), (60, True)):
            placed = _try_label(ax, renderer, xy[cluster[0]], text, radius, leader, taken, frame)
            if placed is not None:
                taken.append(placed)
                break
        else:  # a crowd with no free spot left: better a label over another than a point with none
            ax.annotate(text, xy[cluster[0]], xytext=(7, 7), textcoords="offset points", fontsize=7)


CLUSTER_PX = 10.0


def _box(point: Any, pad: float) -> tuple[float, float, float, float]:
    return (point[0] - pad, point[1] - pad, point[0] + pad, point[1] + pad)


def _hits(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _try_label(
    ax: Any,
    renderer: Any,
    point: tuple[float, float],
    text: str,
    radius: float,
    leader: bool,
    taken: list[tuple[float, float, float, float]],
    frame: Any,
) -> tuple[float, float, float, float] | None:
    """Places `text` at one of eight directions `radius` points from `point`; keeps the first that is
    free and inside the axes, returns its box in pixels (None, and nothing drawn, when none is)."""
    for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0)):
        note = ax.annotate(
            text,
            point,
            xytext=(dx * radius, dy * radius),
            textcoords="offset points",
            fontsize=7,
            ha={1: "left", -1: "right", 0: "center"}[dx],
            va={1: "bottom", -1: "top", 0: "center"}[dy],
            arrowprops={"arrowstyle": "-", "color": "#888", "lw": 0.6} if leader else None,
        )
        e = note.get_window_extent(renderer)
        box = (e.x0 - 2, e.y0 - 2, e.x1 + 2, e.y1 + 2)  # 4 px between labels: "14 12" reads as one
        inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
        if inside and not any(_hits(box, other) for other in taken):
            return box
        note.remove()
    return None
