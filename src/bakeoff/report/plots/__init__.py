"""The report's charts: matplotlib figures rendered to inline SVG strings, one per table they sit beside."""

from bakeoff.report.plots.training import (
    artifacts,
    cold_start,
    latency_by_batch,
    latency_styles,
    overlapping_losses,
    parity_layers,
    pipelines,
    swatch,
    throughput,
    time_to_accuracy,
    train_losses,
    train_step_times,
    train_throughput,
    utilization,
)

__all__ = [
    "artifacts",
    "cold_start",
    "latency_by_batch",
    "latency_styles",
    "overlapping_losses",
    "parity_layers",
    "pipelines",
    "swatch",
    "throughput",
    "time_to_accuracy",
    "train_losses",
    "train_step_times",
    "train_throughput",
    "utilization",
]
