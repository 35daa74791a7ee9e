"""What every chart of the report shares: its colours and markers, a headless figure with fixed SVG
settings, plain-text log and rate axes, the side legend, and the figure as inline SVG markup.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

COLORS = {
    "PyTorch": "#ee4c2c",
    "TensorFlow": "#ff8f00",
    "Keras on PyTorch": "#8e24aa",
    "Keras on JAX": "#1e88e5",
    "?": "#607d8b",
}
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
def figure(width: float = 6.4, height: float = 3.6) -> Iterator[Any]:
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


def log_axis(ax: Any, axis: str = "y", **kwargs: Any) -> None:
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


def count_axis(ax: Any, axis: str = "x") -> None:
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


def bars_height(n: int) -> float:
    """Figure height for n horizontal bars: room for each label, never squashed below a readable size."""
    return max(2.4, 0.3 * n + 1.1)


def family_legend(ax: Any, families: list[str]) -> None:
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


def to_svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # the XML prolog and DOCTYPE are not allowed inside HTML
    # The RDF metadata block only names matplotlib; dropping it keeps the page free of outside URLs.
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
