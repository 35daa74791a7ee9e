"""The report's charts: matplotlib figures rendered to inline SVG strings, one per table they sit beside.

Each function takes the run (raw samples live in its records) or the digest and returns SVG markup, or
None when the run has nothing to draw. Text stays text (svg.fonttype none), so the page can be searched.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from bakeoff.report.digest import family
from bakeoff.results.run import Run

COLORS = {"PyTorch": "#ee4c2c", "TensorFlow": "#ff8f00", "?": "#607d8b"}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


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
    costs seconds per report on a 2-core machine."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    getattr(ax, f"set_{axis}scale")(kwargs.pop("scale", "log"), **kwargs)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # the XML prolog and DOCTYPE are not allowed inside HTML
    # The RDF metadata block only names matplotlib; dropping it keeps the page free of outside URLs.
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


def parity_layers(parity: dict[str, Any] | None) -> str | None:
    layers = (parity or {}).get("layers") or []
    if not layers:
        return None
    with _figure(6.4, max(2.2, 0.32 * len(layers) + 1)) as (fig, ax):
        names = [f"{layer['layer']}{'/' + layer['key'] if layer.get('key') else ''}" for layer in layers]
        values = [max(layer["max_abs"] or 0.0, 1e-12) for layer in layers]
        colors = ["#2e7d32" if layer["ok"] else "#c62828" for layer in layers]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        _log(ax, "x")
        if parity and parity.get("atol"):
            ax.axvline(parity["atol"], color="#555", linestyle="--", label=f"tolerance {parity['atol']:g}")
            ax.legend(loc="lower right")
        ax.set_xlabel("max abs difference, PyTorch vs Keras activation")
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
    with _figure() as (fig, ax):
        for i, (mode, m) in enumerate(modes.items()):
            rate = batch / np.asarray(m["step_times"][1:])
            boots = np.median(rng.choice(rate, size=(1000, rate.size)), axis=1)
            low, high = np.percentile(boots, [2.5, 97.5])
            mid = float(np.median(rate))
            ax.bar(i, mid, color=COLORS[family(mode)])
            ax.errorbar(i, mid, yerr=[[mid - low], [high - mid]], color="black", capsize=4)
        ax.set_xticks(range(len(modes)), list(modes), rotation=20, ha="right")
        ax.set_ylabel("samples/s (median, 95% CI)")
        return _svg(fig)


def train_step_times(run: Run) -> str | None:
    modes = _train_modes(run)
    if not modes:
        return None
    with _figure() as (fig, ax):
        data = [np.asarray(m["step_times"][1:]) * 1e3 for m in modes.values()]
        parts = ax.boxplot(data, showfliers=True, flierprops={"markersize": 2}, patch_artist=True)
        for patch, mode in zip(parts["boxes"], modes, strict=True):
            patch.set_facecolor(COLORS[family(mode)])
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(modes) + 1), list(modes), rotation=20, ha="right")
        _log(ax, "y")
        ax.set_ylabel("step time, ms (first step excluded)")
        return _svg(fig)


def train_losses(run: Run) -> str | None:
    modes = {mode: m for mode, m in _train_modes(run).items() if m.get("step_losses")}
    if not modes:
        return None
    with _figure() as (fig, ax):
        for i, (mode, m) in enumerate(modes.items()):
            ax.plot(m["step_losses"], label=mode, color=PALETTE[i % len(PALETTE)], linewidth=1)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend()
        return _svg(fig)


def time_to_accuracy(run: Run, target: float | None) -> str | None:
    modes = {mode: m for mode, m in _train_modes(run).items() if m.get("val_acc_per_epoch")}
    if not modes:
        return None
    with _figure() as (fig, ax):
        for i, (mode, m) in enumerate(modes.items()):
            seconds = np.cumsum(m["train_seconds_per_epoch"])
            accs = [np.nan if a is None else a for a in m["val_acc_per_epoch"]]
            ax.plot(seconds, accs, marker="o", label=mode, color=PALETTE[i % len(PALETTE)])
        if target is not None:
            ax.axhline(target, color="#555", linestyle="--", label=f"target {target:.3f}")
        ax.set_xlabel("training seconds (compile included, evaluation excluded)")
        ax.set_ylabel("validation score")
        ax.legend()
        return _svg(fig)


def utilization(train: dict[str, Any] | None) -> str | None:
    rows = [r for r in (train or {}).get("modes", []) if r.get("gflops") is not None]
    if not rows:
        return None
    with _figure() as (fig, ax):
        ax.bar(
            [r["mode"] for r in rows],
            [r["gflops"] for r in rows],
            color=[COLORS[r["family"]] for r in rows],
        )
        for framework, peak in (train or {}).get("peak_gflops", {}).items():
            if peak:
                name = {"torch": "PyTorch", "keras": "TensorFlow"}.get(framework, framework)
                ax.axhline(peak, color=COLORS.get(name, "#555"), linestyle="--", label=f"{name} matmul peak")
        ax.set_ylabel("achieved GFLOP/s")
        ax.tick_params(axis="x", rotation=20)
        ax.legend()
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
        ax.set_xlabel("samples/s (median, bar: IQR)")
        return _svg(fig)


def latency_by_batch(infer: dict[str, Any] | None) -> str | None:
    cases = [c for c in (infer or {}).get("cases", []) if c["status"] == "ok" and c["batches"]]
    if not cases:
        return None
    with _figure(6.4, 4.2) as (fig, ax):
        for i, c in enumerate(cases):
            sizes = sorted(c["batches"])
            style = "-" if c["family"] == "PyTorch" else "--"
            ax.plot(
                sizes,
                [c["batches"][b]["p50_ms"] for b in sizes],
                style,
                marker="o",
                markersize=3,
                label=c["case"],
                color=PALETTE[i % len(PALETTE)],
            )
        _log(ax, "x", base=2)
        _log(ax, "y")
        ax.set_xlabel("batch size")
        ax.set_ylabel("p50 latency, ms (solid: PyTorch origin)")
        ax.legend(fontsize=6, ncol=2)
        return _svg(fig)


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
        ax.set_xlabel(f"samples/s at batch {size}")
        return _svg(fig)


def cold_start(infer: dict[str, Any] | None) -> str | None:
    cases = [c for c in (infer or {}).get("cases", []) if c["status"] == "ok" and c.get("load_s") is not None]
    if not cases:
        return None
    with _figure(6.4, max(2.4, 0.25 * len(cases) + 1)) as (fig, ax):
        names = [c["case"] for c in cases]
        load = [c["load_s"] * 1e3 for c in cases]
        first = [(c.get("first_call_s") or 0) * 1e3 for c in cases]
        ax.barh(names, load, color="#90a4ae", label="load")
        ax.barh(names, first, left=load, color="#37474f", label="first call")
        ax.invert_yaxis()
        _log(ax, "x", scale="symlog", linthresh=1)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("ms (warm worker: framework already imported)")
        ax.legend()
        return _svg(fig)


def artifacts(export: dict[str, Any] | None) -> str | None:
    rows = [r for r in (export or {}).get("artifacts", []) if r["status"] == "ok" and r.get("size_bytes")]
    if not rows:
        return None
    with _figure(6.4, 3.8) as (fig, ax):
        for r in rows:
            rel = r.get("relative_accuracy") or 1.0
            ax.scatter(r["size_bytes"] / 1024, rel * 100, color=COLORS[r["family"]], s=24)
            ax.annotate(
                r["artifact"],
                (r["size_bytes"] / 1024, rel * 100),
                fontsize=6,
                xytext=(3, 2),
                textcoords="offset points",
            )
        ax.axhline(99, color="#c62828", linestyle="--", label="99% gate")
        ax.set_xlabel("size on disk, KB")
        ax.set_ylabel("accuracy, % of fp32")
        ax.legend()
        return _svg(fig)
