"""The report's charts: matplotlib figures rendered to inline SVG strings, one per table they sit beside.

Each function takes the run (raw samples live in its records) or the digest and returns SVG markup, or
None when the run has nothing to draw. Text stays text (svg.fonttype none), so the page can be searched.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from bakeoff.report.digest import family
from bakeoff.results.run import Run

COLORS = {"PyTorch": "#ee4c2c", "TensorFlow": "#ff8f00", "?": "#607d8b"}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
# Colour per inference runtime: ten distinct hues (tab10), none of them grey.
RUNTIME_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", ":", "-."]


@contextmanager
def _figure(width: float = 6.4, height: float = 3.6) -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")  # no display; the report is written by a headless process
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "bakeoff", "font.size": 9, "axes.spines.top": False}
    ):
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def _log(ax: Any, axis: str = "y", **kwargs: Any) -> None:
    """A log axis with plain tick labels: matplotlib's default 10^x labels go through mathtext, which
    costs seconds per report on a 2-core machine. An axis spanning less than SHORT_LOG_SPAN also labels
    its 2x and 5x minor ticks: with one or two decade labels a reader cannot read a value off it."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    scale = kwargs.pop("scale", "log")
    getattr(ax, f"set_{axis}scale")(scale, **kwargs)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if scale != "log" or kwargs.get("base", 10) != 10:
        target.set_minor_formatter(NullFormatter())
        return

    def minor(value: float, _: int) -> str:
        low, high = sorted(target.get_view_interval())
        if value <= 0 or low <= 0 or high / low > SHORT_LOG_SPAN:
            return ""
        lead = round(value / 10 ** math.floor(math.log10(value)))
        return f"{value:g}" if lead in (2, 5) else ""

    target.set_minor_formatter(FuncFormatter(minor))


SHORT_LOG_SPAN = 30.0


def _counts(ax: Any, axis: str = "x") -> None:
    """A linear axis of rates (samples/s) with at most six ticks labelled 2.5k, 500k, 1.2M: six-digit
    labels at matplotlib's default density run into each other in a half-page chart."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(nbins=5))
    target.set_major_formatter(FuncFormatter(lambda v, _: _short_count(v)))


def _short_count(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def _bars_height(n: int) -> float:
    """Figure height for n horizontal bars: room for each label, never squashed below a readable size."""
    return max(2.4, 0.3 * n + 1.1)


def _family_legend(ax: Any, families: list[str]) -> None:
    """A legend for bars coloured by side (PyTorch / TensorFlow), outside the axes."""
    from matplotlib.patches import Patch

    shown = [f for f in COLORS if f in families]
    ax.legend(
        [Patch(color=COLORS[f]) for f in shown],
        shown,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=7,
        frameon=False,
    )


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # the XML prolog and DOCTYPE are not allowed inside HTML
    # The RDF metadata block only names matplotlib; dropping it keeps the page free of outside URLs.
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


def parity_layers(parity: dict[str, Any] | None) -> str | None:
    """One point per layer on a log axis, with the tolerance as a line: a bar on a log axis starts at an
    arbitrary floor, so its length says nothing. Exact zeros sit at the left edge, drawn hollow."""
    layers = (parity or {}).get("layers") or []
    if not layers:
        return None
    atol = (parity or {}).get("atol")
    with _figure(6.4, max(2.4, 0.28 * len(layers) + 1.2)) as (fig, ax):
        names = [f"{layer['layer']}{'/' + layer['key'] if layer.get('key') else ''}" for layer in layers]
        values = [layer["max_abs"] for layer in layers]
        finite = [v for v in values if v is not None and v > 0]
        floor = min([*finite, atol or 1.0]) / 10
        y = np.arange(len(layers))[::-1]
        groups = [
            ("within tolerance", "#2e7d32", "o", lambda v, ok: ok and v is not None and v > 0),
            ("0 (identical)", "#2e7d32", "o", lambda v, ok: ok and v is not None and v <= 0),
            ("diverges", "#c62828", "X", lambda v, ok: not ok),
        ]
        for name, color, marker, member in groups:
            pick = [i for i, layer in enumerate(layers) if member(values[i], layer["ok"])]
            if not pick:
                continue
            xs = [floor if values[i] is None or values[i] <= 0 else values[i] for i in pick]
            hollow = name.startswith("0 ")
            ax.scatter(
                xs,
                y[pick],
                marker=marker,
                s=36,
                label=name,
                facecolors="none" if hollow else color,
                edgecolors=color,
                zorder=3,
            )
        ax.hlines(y, floor, [floor if v is None or v <= 0 else v for v in values], color="#ddd", zorder=1)
        ax.set_yticks(y, names)
        ax.set_ylim(-0.7, len(layers) - 0.3)
        _log(ax, "x")
        if atol:
            ax.axvline(atol, color="#555", linestyle="--", label=f"tolerance {atol:g}")
        ax.set_xlabel("max abs difference, PyTorch vs Keras activation (log)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return _svg(fig)


def _train_modes(run: Run) -> dict[str, dict[str, Any]]:
    return {
        r["case"]: r["metrics"]
        for r in run.stage("train")
        if r["status"] == "ok" and len(r["metrics"].get("step_times", [])) > 1
    }


def train_throughput(run: Run) -> str | None:
    """Median samples/s per mode with a bootstrap 95% CI of that median (steps resampled)."""
    modes = _train_modes(run)
    if not modes:
        return None
    batch = next(r["settings"]["batch_size"] for r in run.stage("train") if r["case"] in modes)
    rng = np.random.default_rng(0)
    with _figure(6.4, _bars_height(len(modes))) as (fig, ax):
        for i, (mode, m) in enumerate(modes.items()):
            rate = batch / np.asarray(m["step_times"][1:])
            boots = np.median(rng.choice(rate, size=(1000, rate.size)), axis=1)
            low, high = np.percentile(boots, [2.5, 97.5])
            mid = float(np.median(rate))
            ax.barh(i, mid, color=COLORS[family(mode)])
            ax.errorbar(mid, i, xerr=[[mid - low], [high - mid]], color="black", capsize=4)
        ax.set_yticks(range(len(modes)), list(modes))
        ax.invert_yaxis()
        _counts(ax)
        ax.set_xlabel("samples/s (median, bar: 95% CI)")
        _family_legend(ax, [family(mode) for mode in modes])
        return _svg(fig)


def train_step_times(run: Run) -> str | None:
    modes = _train_modes(run)
    if not modes:
        return None
    with _figure(6.4, _bars_height(len(modes))) as (fig, ax):
        data = [np.asarray(m["step_times"][1:]) * 1e3 for m in modes.values()]
        parts = ax.boxplot(
            data, orientation="horizontal", showfliers=True, flierprops={"markersize": 2}, patch_artist=True
        )
        for patch, mode in zip(parts["boxes"], modes, strict=True):
            patch.set_facecolor(COLORS[family(mode)])
            patch.set_alpha(0.6)
        ax.set_yticks(range(1, len(modes) + 1), list(modes))
        ax.invert_yaxis()
        _log(ax, "x")
        ax.set_xlabel("step time, ms (log; first step excluded)")
        _family_legend(ax, [family(mode) for mode in modes])
        return _svg(fig)


def _losses(run: Run) -> dict[str, list[float]]:
    return {mode: m["step_losses"] for mode, m in _train_modes(run).items() if m.get("step_losses")}


def _overlap_groups(curves: dict[str, list[float]]) -> list[list[str]]:
    """Modes whose loss curves a reader cannot tell apart: the same length and never further apart than
    OVERLAP (a fraction of the plot's loss range). Grouped transitively, in the curves' order."""
    values = [np.asarray(c, dtype=float) for c in curves.values()]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    span = float(np.ptp(finite)) if finite.size else 0.0
    names = list(curves)
    group = list(range(len(names)))  # union-find over the modes

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = values[i], values[j]
            if a.shape == b.shape and np.allclose(a, b, rtol=0, atol=OVERLAP * span, equal_nan=True):
                group[root(j)] = root(i)
    found: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        found.setdefault(root(i), []).append(name)
    return list(found.values())


# Curves closer than this fraction of the loss range are under one pixel apart in a 300-pixel plot.
OVERLAP = 0.003


def overlapping_losses(run: Run) -> list[list[str]]:
    """Groups of two or more modes whose loss curves lie on top of each other (for the caption)."""
    return [g for g in _overlap_groups(_losses(run)) if len(g) > 1]


def _joined(group: list[str]) -> str:
    """A legend label for curves drawn as one: 'a, b, c' over lines of three names, '(overlap)' after."""
    if len(group) == 1:
        return group[0]
    lines = [", ".join(group[i : i + 3]) for i in range(0, len(group), 3)]
    return ",\n".join(lines) + " (overlap)"


def train_losses(run: Run) -> str | None:
    curves = _losses(run)
    if not curves:
        return None
    with _figure() as (fig, ax):
        for i, group in enumerate(_overlap_groups(curves)):
            ax.plot(
                curves[group[0]],
                label=_joined(group),
                color=PALETTE[i % len(PALETTE)],
                linestyle=LINESTYLES[i // len(PALETTE) % len(LINESTYLES)],
                linewidth=1,
            )
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=7)
        return _svg(fig)


def time_to_accuracy(run: Run, target: float | None, task: str | None = None) -> str | None:
    """Validation score per epoch against training time; for regression the MSE (lower is better)."""
    modes = {mode: m for mode, m in _train_modes(run).items() if m.get("val_acc_per_epoch")}
    if not modes:
        return None
    sign = -1.0 if task == "regression" else 1.0  # records keep -MSE so that higher is better
    with _figure() as (fig, ax):
        for i, (mode, m) in enumerate(modes.items()):
            seconds = np.cumsum(m["train_seconds_per_epoch"])
            accs = [np.nan if a is None else sign * a for a in m["val_acc_per_epoch"]]
            ax.plot(
                seconds,
                accs,
                marker=MARKERS[i % len(MARKERS)],
                label=mode,
                color=PALETTE[i % len(PALETTE)],
            )
        if target is not None:
            ax.axhline(sign * target, color="#555", linestyle="--", label=f"target {sign * target:.3f}")
        ax.set_xlabel("training seconds (compile included, evaluation excluded)")
        ax.set_ylabel("validation MSE (lower is better)" if sign < 0 else "validation accuracy")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return _svg(fig)


def utilization(train: dict[str, Any] | None) -> str | None:
    rows = [r for r in (train or {}).get("modes", []) if r.get("gflops") is not None]
    if not rows:
        return None
    with _figure(6.4, _bars_height(len(rows))) as (fig, ax):
        ax.barh(
            [r["mode"] for r in rows],
            [r["gflops"] for r in rows],
            color=[COLORS[r["family"]] for r in rows],
        )
        ax.invert_yaxis()
        for framework, peak in (train or {}).get("peak_gflops", {}).items():
            if peak:
                name = {"torch": "PyTorch", "keras": "TensorFlow"}.get(framework, framework)
                ax.axvline(peak, color=COLORS.get(name, "#555"), linestyle="--", label=f"{name} matmul peak")
        _counts(ax)
        ax.set_xlabel("achieved GFLOP/s")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return _svg(fig)


def pipelines(pipeline: dict[str, Any] | None) -> str | None:
    rows = [r for r in (pipeline or {}).get("pipelines", []) if r.get("samples_per_s")]
    if not rows:
        return None
    with _figure() as (fig, ax):
        y = range(len(rows))
        colors = [COLORS["PyTorch" if r["framework"] == "torch" else "TensorFlow"] for r in rows]
        ax.barh(
            list(y),
            [r["samples_per_s"] for r in rows],
            xerr=[(r["iqr"] or 0) / 2 for r in rows],
            color=colors,
        )
        ax.set_yticks(list(y), [r["pipeline"] for r in rows])
        ax.invert_yaxis()
        _counts(ax)
        ax.set_xlabel("samples/s (median, bar: IQR)")
        _family_legend(ax, ["PyTorch" if r["framework"] == "torch" else "TensorFlow" for r in rows])
        return _svg(fig)


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
    with _figure(6.4, 4.2) as (fig, ax):
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
        _log(ax, "x", base=2)
        _log(ax, "y")
        ax.set_xlabel("batch size (log)")
        ax.set_ylabel("p50 latency, ms (log)")
        return _svg(fig)


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
    with _figure(6.4, max(2.4, 0.25 * len(rows) + 1)) as (fig, ax):
        ax.barh(
            [c["case"] for c in rows],
            [c["batches"][size]["samples_per_s"] for c in rows],
            color=[COLORS[c["family"]] for c in rows],
        )
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        _counts(ax)
        ax.set_xlabel(f"samples/s at batch {size}")
        _family_legend(ax, [c["family"] for c in rows])
        return _svg(fig)


def cold_start(infer: dict[str, Any] | None) -> str | None:
    cases = [c for c in (infer or {}).get("cases", []) if c["status"] == "ok" and c.get("load_s") is not None]
    if not cases:
        return None
    """Load time and first call per case as two points on one log axis. Stacked bars on a log axis (as
    this was) draw the second part shorter the longer the first one is; points keep both honest."""
    with _figure(6.4, max(2.4, 0.25 * len(cases) + 1)) as (fig, ax):
        y = np.arange(len(cases))
        load = np.array([c["load_s"] * 1e3 for c in cases])
        first = np.array([(c.get("first_call_s") or 0) * 1e3 for c in cases])
        floor = min([*load[load > 0], *first[first > 0], 1.0]) / 2  # a zero still gets a place
        ax.hlines(y, floor, np.maximum(load, first).clip(floor), color="#e0e0e0", zorder=1)
        ax.scatter(load.clip(floor), y, color="#78909c", marker="o", s=22, label="load", zorder=3)
        ax.scatter(first.clip(floor), y, color="#263238", marker="D", s=18, label="first call", zorder=3)
        ax.set_yticks(y, [c["case"] for c in cases])
        ax.invert_yaxis()
        _log(ax, "x")
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("ms, log (warm worker: framework already imported)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return _svg(fig)


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
    with _figure(6.4, 3.8) as (fig, ax):
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
        _log(ax, "x")
        ax.set_xlabel("size on disk, KB (log)")
        ax.margins(x=0.15, y=0.2)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        _number_points(fig, ax, xy, [number for number, _ in points])
        return _svg(fig)


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
