"""Raw times kept per round, and the ratio of two cases computed over their rounds.

A timed case is measured in several rounds (see the infer stage), and its record keeps every call's
time in one list, `times`, with `round_sizes` saying how many calls each round holds, so readers that
want all calls have them and readers that want the rounds can split them. Training modes are timed
again after training in rounds that take turns between the workers (the train summary's `timing`);
where a mode has none (a run from before them, or a mode whose timing failed), its training run's
steady steps are cut into contiguous segments, which see drift inside the run but not between runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def of_mode(metrics: dict[str, Any], timing: dict[str, Any] | None, mode: str) -> list[np.ndarray]:
    """A training mode's step times by round: its timing rounds where the run has them (the train
    summary's `timing`; pass None to take the training run), else contiguous segments of its training
    run's steps."""
    timed = ((timing or {}).get("modes") or {}).get(mode)
    if timed:
        return split(timed["times"], timed["round_sizes"])
    return segments(metrics["step_times"])


def timing_of(timing: dict[str, Any] | None, modes: Iterable[str]) -> dict[str, Any] | None:
    """`timing` when every one of `modes` has timing rounds in it, else None: comparisons among modes
    take one source for all of them (a timing median beside a training median would compare two
    stretches of time)."""
    timed = (timing or {}).get("modes") or {}
    return timing if timed and all(mode in timed for mode in modes) else None


def step_medians(modes: dict[str, dict[str, Any]], timing: dict[str, Any] | None) -> dict[str, float]:
    """Each mode's median step, from the timing rounds when every mode has them (`timing_of`), else
    from every mode's training run."""
    timing = timing_of(timing, modes)
    if timing is not None:
        return {mode: float(timing["modes"][mode]["median"]) for mode in modes}
    return {mode: float(m["step_s"]["median"]) for mode, m in modes.items()}


def pair_rounds(
    a: dict[str, Any], b: dict[str, Any], timing: dict[str, Any] | None, a_mode: str, b_mode: str
) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """Two training modes' step times by round, and whether they are paired: their timing rounds when
    both took turns in them (paired), else their training runs' segments (not paired)."""
    timed = (timing or {}).get("modes") or {}
    if a_mode in timed and b_mode in timed:
        return of_mode(a, timing, a_mode), of_mode(b, timing, b_mode), True
    return segments(a["step_times"]), segments(b["step_times"]), False


def step_ratio(
    a: dict[str, Any], b: dict[str, Any], timing: dict[str, Any] | None, a_mode: str, b_mode: str
) -> Ratio:
    """Mode a's step over mode b's (see `pair_rounds`)."""
    a_rounds, b_rounds, paired = pair_rounds(a, b, timing, a_mode, b_mode)
    return ratio(a_rounds, b_rounds, paired=paired)
