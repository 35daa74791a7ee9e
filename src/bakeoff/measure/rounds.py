"""Raw times kept per round, and the ratio of two cases computed over their rounds.

A timed case is measured in several rounds (see the infer stage), and its record keeps every call's
time in one list, `times`, with `round_sizes` saying how many calls each round holds, so readers that
want all calls have them and readers that want the rounds can split them. Training measures in one
process; its steady steps are cut into contiguous segments, which see drift inside the run but not
between runs (the record says which it is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bakeoff.measure.stats import Ratio, hierarchical_ratio_ci

# Steady training steps are cut into this many contiguous segments (fewer when there are few steps).
TRAIN_SEGMENTS = 5
# A segment of fewer steps than this says nothing a block bootstrap would not.
MIN_SEGMENT_STEPS = 5


def split(times: Sequence[float], sizes: Sequence[int] | None) -> list[np.ndarray]:
    """`times` cut by `sizes` (one round when `sizes` is missing, as in records from before rounds, or
    does not add up)."""
    values = np.asarray(times, dtype=float)
    if not sizes or sum(sizes) != values.size or min(sizes) < 1:
        return [values]
    return [np.asarray(part) for part in np.split(values, np.cumsum(sizes)[:-1])]


def of_batch(batch: dict[str, Any]) -> list[np.ndarray]:
    """The rounds of one inference batch size's record entry."""
    return split(batch.get("times") or [], batch.get("round_sizes"))


def segments(steps: Sequence[float], n: int = TRAIN_SEGMENTS) -> list[np.ndarray]:
    """Contiguous segments of a run's steady steps (step 1, which holds compile time, left out)."""
    values = np.asarray(steps, dtype=float)[1:] if len(steps) > 1 else np.asarray(steps, dtype=float)
    k = max(1, min(n, values.size // MIN_SEGMENT_STEPS))
    return [np.asarray(part) for part in np.array_split(values, k)]


def ratio(
    a: list[np.ndarray], b: list[np.ndarray], *, paired: bool, n_boot: int = 1000, seed: int = 0
) -> Ratio:
    """median(a) / median(b) with a CI over rounds first, calls second (`paired`: measured side by
    side, round k of each in the same stretch of time)."""
    return hierarchical_ratio_ci(a, b, paired=paired, n_boot=n_boot, seed=seed)
