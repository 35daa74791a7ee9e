"""The charts of the parity, training and input-pipeline sections: layer differences, throughput, step
times, loss curves, time to accuracy, utilization and pipeline rates.

Each function takes the run (raw samples live in its records) or the digest and returns SVG markup, or
None when the run has nothing to draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bakeoff.report.digest import FAMILY, family
from bakeoff.report.plots.figure import (
    COLORS,
    LINESTYLES,
    MARKERS,
    PALETTE,
    bars_height,
    count_axis,
    family_legend,
    figure,
    log_axis,
    to_svg,
)
from bakeoff.results.run import Run


def parity_layers(parity: dict[str, Any] | None) -> str | None:
    """One point per layer on a log axis, with the tolerance as a line: a bar on a log axis starts at an
    arbitrary floor, so its length says nothing. Exact zeros sit at the left edge, drawn hollow."""
    layers = (parity or {}).get("layers") or []
    if not layers:
        return None
    atol = (parity or {}).get("atol")
    with figure(6.4, max(2.4, 0.28 * len(layers) + 1.2)) as (fig, ax):
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
        log_axis(ax, "x")
        if atol:
            ax.axvline(atol, color="#555", linestyle="--", label=f"tolerance {atol:g}")
        ax.set_xlabel("max abs difference, PyTorch vs Keras activation (log)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return to_svg(fig)


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
    with figure(6.4, bars_height(len(modes))) as (fig, ax):
        for i, (mode, m) in enumerate(modes.items()):
            rate = batch / np.asarray(m["step_times"][1:])
            boots = np.median(rng.choice(rate, size=(1000, rate.size)), axis=1)
            low, high = np.percentile(boots, [2.5, 97.5])
            mid = float(np.median(rate))
            ax.barh(i, mid, color=COLORS[family(mode)])
            ax.errorbar(mid, i, xerr=[[mid - low], [high - mid]], color="black", capsize=4)
        ax.set_yticks(range(len(modes)), list(modes))
        ax.invert_yaxis()
        count_axis(ax)
        ax.set_xlabel("samples/s (median, bar: 95% CI)")
        family_legend(ax, [family(mode) for mode in modes])
        return to_svg(fig)


def train_step_times(run: Run) -> str | None:
    modes = _train_modes(run)
    if not modes:
        return None
    with figure(6.4, bars_height(len(modes))) as (fig, ax):
        data = [np.asarray(m["step_times"][1:]) * 1e3 for m in modes.values()]
        parts = ax.boxplot(
            data, orientation="horizontal", showfliers=True, flierprops={"markersize": 2}, patch_artist=True
        )
        for patch, mode in zip(parts["boxes"], modes, strict=True):
            patch.set_facecolor(COLORS[family(mode)])
            patch.set_alpha(0.6)
        ax.set_yticks(range(1, len(modes) + 1), list(modes))
        ax.invert_yaxis()
        log_axis(ax, "x")
        ax.set_xlabel("step time, ms (log; first step excluded)")
        family_legend(ax, [family(mode) for mode in modes])
        return to_svg(fig)


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
    with figure() as (fig, ax):
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
        return to_svg(fig)


def time_to_accuracy(run: Run, target: float | None, task: str | None = None) -> str | None:
    """Validation score per epoch against training time; for regression the MSE (lower is better)."""
    modes = {mode: m for mode, m in _train_modes(run).items() if m.get("val_acc_per_epoch")}
    if not modes:
        return None
    sign = -1.0 if task == "regression" else 1.0  # records keep -MSE so that higher is better
    with figure() as (fig, ax):
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
        return to_svg(fig)


def utilization(train: dict[str, Any] | None) -> str | None:
    rows = [r for r in (train or {}).get("modes", []) if r.get("gflops") is not None]
    if not rows:
        return None
    with figure(6.4, bars_height(len(rows))) as (fig, ax):
        ax.barh(
            [r["mode"] for r in rows],
            [r["gflops"] for r in rows],
            color=[COLORS[r["family"]] for r in rows],
        )
        ax.invert_yaxis()
        for framework, peak in (train or {}).get("peak_gflops", {}).items():
            if peak:
                name = FAMILY.get(framework, framework)
                ax.axvline(peak, color=COLORS.get(name, "#555"), linestyle="--", label=f"{name} matmul peak")
        count_axis(ax)
        ax.set_xlabel("achieved GFLOP/s")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return to_svg(fig)


def pipelines(pipeline: dict[str, Any] | None) -> str | None:
    rows = [r for r in (pipeline or {}).get("pipelines", []) if r.get("samples_per_s")]
    if not rows:
        return None
    with figure() as (fig, ax):
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
        count_axis(ax)
        ax.set_xlabel("samples/s (median, bar: IQR)")
        family_legend(ax, ["PyTorch" if r["framework"] == "torch" else "TensorFlow" for r in rows])
        return to_svg(fig)
