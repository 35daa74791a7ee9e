"""The report's charts: matplotlib figures rendered to inline SVG strings, one per table they sit beside.

Each function takes the run (raw samples live in its records) or the digest and returns SVG markup, or
None when the run has nothing to draw. Text stays text (svg.fonttype none), so the page can be searched.
"""

from bakeoff.report.plots.inference import (
    artifacts,
    cold_start,
    latency_by_batch,
    latency_styles,
    swatch,
    throughput,
)
from bakeoff.report.plots.scaling import scaling
from bakeoff.report.plots.serving import knee
from bakeoff.report.plots.training import (
    overlapping_losses,
    parity_layers,
    pipelines,
    time_to_accuracy,
    train_losses,
    train_step_times,
    train_throughput,
    utilization,
)

__all__ = [
    "artifacts",
    "cold_start",
    "knee",
    "latency_by_batch",
    "latency_styles",
    "overlapping_losses",
    "parity_layers",
    "pipelines",
    "scaling",
    "swatch",
    "throughput",
    "time_to_accuracy",
    "train_losses",
    "train_step_times",
    "train_throughput",
    "utilization",
]
