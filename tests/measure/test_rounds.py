"""Rounds: raw times split back into rounds, and the bootstrap over rounds that sees drift between them."""

from __future__ import annotations

import numpy as np
import pytest

from bakeoff.measure import rounds
from bakeoff.measure.stats import hierarchical_ratio_ci, ratio_ci


def test_split_uses_round_sizes_and_falls_back_to_one_round() -> None:
    parts = rounds.split([1.0, 2.0, 3.0, 4.0, 5.0], [2, 3])
    assert [p.tolist() for p in parts] == [[1.0, 2.0], [3.0, 4.0, 5.0]]
    assert len(rounds.split([1.0, 2.0], None)) == 1
    assert len(rounds.split([1.0, 2.0], [5])) == 1  # sizes that do not add up: one round
    assert len(rounds.of_batch({"times": [1.0, 2.0, 3.0], "round_sizes": [1, 2]})) == 2


def test_segments_leave_out_the_first_step_and_need_enough_steps() -> None:
    steps = [9.0] + [1.0] * 50
    parts = rounds.segments(steps)
    assert len(parts) == rounds.TRAIN_SEGMENTS and sum(p.size for p in parts) == 50
    assert all(p.max() == 1.0 for p in parts)
    assert len(rounds.segments([9.0] + [1.0] * 7)) == 1


def _drifting(medians: list[float], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [m * (1 + 0.01 * rng.standard_normal(200)) for m in medians]


def test_drift_between_rounds_widens_the_interval() -> None:
    a = _drifting([1.0, 0.95, 1.05, 1.0, 0.98], 1)
    b = _drifting([1.03, 1.08, 0.99, 1.05, 1.02], 2)
    calls_only = ratio_ci(np.concatenate(a), np.concatenate(b), block=None)
    over_rounds = hierarchical_ratio_ci(a, b)
    assert over_rounds.ratio == pytest.approx(calls_only.ratio)
    assert over_rounds.high - over_rounds.low > 2 * (calls_only.high - calls_only.low)
    assert over_rounds.low < 1.0 < over_rounds.high


def test_paired_rounds_cancel_drift_both_sides_share() -> None:
    drift = [1.0, 0.9, 1.1, 1.0, 0.95]
    a = _drifting(drift, 3)
    b = [r * 1.2 for r in _drifting(drift, 4)]  # b is 1.2x slower in every round
    paired = hierarchical_ratio_ci(b, a, paired=True)
    unpaired = hierarchical_ratio_ci(b, a, paired=False)
    assert paired.low > 1.15 and paired.high < 1.25
    assert unpaired.high - unpaired.low > paired.high - paired.low


def test_one_round_is_the_block_bootstrap_and_bad_input_is_refused() -> None:
    a, b = [np.linspace(1.0, 2.0, 50)], [np.linspace(1.5, 2.5, 50)]
    assert hierarchical_ratio_ci(a, b) == ratio_ci(a[0], b[0], block=None)
    with pytest.raises(ValueError, match="at least one round"):
        hierarchical_ratio_ci([], b)
    with pytest.raises(ValueError, match="positive"):
        hierarchical_ratio_ci([np.array([1.0, -1.0])], b)


def test_training_modes_are_compared_over_their_timing_rounds_paired_where_both_have_them() -> None:
    steps = {"step_times": [0.5] + [0.002] * 40, "step_s": {"median": 0.002}}
    timing = {"modes": {"a": {"times": [1.0, 1.1, 2.0, 2.1], "round_sizes": [2, 2], "median": 1.55}}}
    timing["modes"]["b"] = {"times": [0.5, 0.55, 1.0, 1.05], "round_sizes": [2, 2], "median": 0.775}
    a_rounds, b_rounds, paired = rounds.pair_rounds(steps, steps, timing, "a", "b")
    assert paired and [list(r) for r in a_rounds] == [[1.0, 1.1], [2.0, 2.1]]
    # a is twice as slow as b in each round: paired, the round-to-round swing (2x) cancels.
    r = rounds.step_ratio(steps, steps, timing, "a", "b")
    assert 1.8 <= r.low <= r.high <= 2.2, r
    assert rounds.ratio(a_rounds, b_rounds, paired=False).low < 1.5
    # Medians from one source: the timing rounds only when every mode compared has them.
    assert rounds.step_medians({"a": steps, "b": steps}, timing) == {"a": 1.55, "b": 0.775}
    assert rounds.step_medians({"a": steps, "c": steps}, timing) == {"a": 0.002, "c": 0.002}
    assert rounds.timing_of(timing, ["a", "c"]) is None and rounds.timing_of(None, ["a"]) is None
    # A mode without timing rounds: both fall back to their training steps' segments, unpaired.
    _, c_rounds, paired = rounds.pair_rounds(steps, steps, timing, "a", "c")
    assert not paired and len(c_rounds) == 5 and sum(len(c) for c in c_rounds) == 40
