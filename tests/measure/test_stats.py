"""Summaries and bootstrap ratios: known values, determinism, and the verdict's wording."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bakeoff.measure.stats import NOISE_THRESHOLD, Ratio, Stats, ratio_ci, summarize


def test_summarize_matches_numpy_linear_percentiles() -> None:
    samples = [5.0, 1.0, 3.0, 2.0, 4.0]
    stats = summarize(samples)
    assert stats.median == 3.0
    assert stats.iqr == pytest.approx(4.0 - 2.0)
    assert stats.p90 == pytest.approx(np.percentile(samples, 90))
    assert stats.p99 == pytest.approx(4.96)
    assert (stats.mean, stats.min, stats.max, stats.n) == (3.0, 1.0, 5.0, 5)
    assert stats.rel_iqr == pytest.approx(2.0 / 3.0)


def test_single_sample_has_no_spread() -> None:
    stats = summarize([0.25])
    assert (stats.median, stats.iqr, stats.p99, stats.n) == (0.25, 0.0, 0.25, 1)
    assert not stats.noisy


def test_noisy_flag_uses_the_threshold() -> None:
    assert NOISE_THRESHOLD == 0.10
    quiet = Stats(median=1.0, iqr=0.10, p90=1, p99=1, mean=1, min=1, max=1, n=3)
    loud = Stats(median=1.0, iqr=0.11, p90=1, p99=1, mean=1, min=1, max=1, n=3)
    assert not quiet.noisy and loud.noisy


def test_zero_median_gives_zero_rel_iqr() -> None:
    assert summarize([0.0, 0.0, 1.0]).rel_iqr == 0.0


def test_to_dict_holds_plain_values() -> None:
    d = summarize(np.array([1.0, 2.0, 3.0], dtype=np.float32)).to_dict()
    assert set(d) == {"median", "iqr", "p90", "p99", "mean", "min", "max", "n", "rel_iqr", "noisy"}
    assert all(type(v) in (float, int, bool) for v in d.values())
    assert type(d["n"]) is int


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_empty_and_non_finite(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)


def test_ratio_ci_finds_a_clear_difference() -> None:
    rng = np.random.default_rng(1)
    fast = rng.normal(1.0, 0.02, 200)
    slow = rng.normal(1.84, 0.04, 200)
    r = ratio_ci(fast, slow)
    assert r.ratio == pytest.approx(np.median(fast) / np.median(slow))
    assert r.low < r.ratio < r.high < 1.0
    assert r.significant
    assert (r.level, r.n_boot) == (0.95, 2000)


def test_ratio_ci_same_distribution_is_not_significant() -> None:
    rng = np.random.default_rng(2)
    r = ratio_ci(rng.normal(1.0, 0.05, 100), rng.normal(1.0, 0.05, 100))
    assert r.low < 1.0 < r.high
    assert not r.significant


def test_ratio_ci_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0, 0.2, 50), rng.lognormal(0.1, 0.2, 60)
    assert ratio_ci(a, b, seed=7) == ratio_ci(a, b, seed=7)
    assert ratio_ci(a, b, seed=7) != ratio_ci(a, b, seed=8)


def test_ratio_ci_wider_level_gives_wider_interval() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(0, 0.3, 40), rng.lognormal(0, 0.3, 40)
    narrow, wide = ratio_ci(a, b, level=0.5), ratio_ci(a, b, level=0.99)
    assert wide.low <= narrow.low and narrow.high <= wide.high


def test_ratio_ci_handles_large_samples_in_blocks() -> None:
    rng = np.random.default_rng(5)
    r = ratio_ci(rng.lognormal(0, 0.1, 20_000), rng.lognormal(0.5, 0.1, 20_000), n_boot=500)
    assert r.high < 1.0 and r.ratio == pytest.approx(np.exp(-0.5), rel=0.01)


@pytest.mark.parametrize(
    ("a", "b", "kwargs"),
    [
        ([], [1.0], {}),
        ([1.0], [0.0, 1.0], {}),
        ([1.0], [-1.0], {}),
        ([1.0], [1.0], {"level": 1.0}),
        ([1.0], [1.0], {"n_boot": 0}),
    ],
)
def test_ratio_ci_rejects_bad_input(a: list[float], b: list[float], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ratio_ci(a, b, **kwargs)


def test_verdict_for_times_names_the_lower_one() -> None:
    # a's time is about 0.54 of b's: a is about 1.84x faster.
    r = Ratio(ratio=1 / 1.84, low=1 / 1.90, high=1 / 1.79)
    assert r.verdict("torch eager", "keras graph") == (
        "torch eager is 1.84x faster than keras graph (95% CI 1.79-1.90)"
    )
    slower = Ratio(ratio=1.84, low=1.79, high=1.90)
    assert slower.verdict("torch eager", "keras graph") == (
        "keras graph is 1.84x faster than torch eager (95% CI 1.79-1.90)"
    )


def test_verdict_for_throughputs_names_the_higher_one() -> None:
    r = Ratio(ratio=1.84, low=1.79, high=1.90)
    assert r.verdict("onnxruntime", "tflite", higher_is_better=True) == (
        "onnxruntime is 1.84x faster than tflite (95% CI 1.79-1.90)"
    )
    lower = Ratio(ratio=0.5, low=0.4, high=0.625)
    assert lower.verdict("onnxruntime", "tflite", higher_is_better=True) == (
        "tflite is 2.00x faster than onnxruntime (95% CI 1.60-2.50)"
    )


def test_verdict_without_significance_names_no_winner() -> None:
    r = Ratio(ratio=1.01, low=0.97, high=1.05)
    assert r.verdict("a", "b") == "no significant difference (ratio 1.01, 95% CI 0.97-1.05)"
    assert r.verdict("a", "b", higher_is_better=True) == r.verdict("a", "b")


def test_verdict_takes_another_adjective() -> None:
    r = Ratio(ratio=0.5, low=0.45, high=0.55)
    assert r.verdict("tflite", "savedmodel", adjective="smaller").startswith("tflite is 2.00x smaller than")


def test_verdict_and_ratio_from_real_bootstrap_agree() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(1.0, 0.01, 100), rng.normal(2.0, 0.02, 100)
    text = ratio_ci(a, b).verdict("a", "b")
    assert text.startswith("a is 2.0") and "x faster than b" in text


def test_ratio_to_dict() -> None:
    d = Ratio(ratio=0.5, low=0.4, high=0.6).to_dict()
    assert d == {"ratio": 0.5, "low": 0.4, "high": 0.6, "level": 0.95, "n_boot": 2000, "significant": True}


def test_block_bootstrap_widens_the_interval_of_drifting_samples() -> None:
    # Two runs whose step times drift slowly (correlated neighbours): resampling steps one by one
    # pretends to know the ratio better than the runs allow.
    rng = np.random.default_rng(3)
    drift = np.cumsum(rng.normal(0, 0.02, 400))
    a = np.exp(drift) * 1.0
    b = np.exp(np.cumsum(rng.normal(0, 0.02, 400))) * 1.0
    iid = ratio_ci(a, b, block=1)
    blocks = ratio_ci(a, b, block=None)
    assert blocks.ratio == iid.ratio
    assert (blocks.high - blocks.low) > 1.5 * (iid.high - iid.low)


def test_block_of_one_is_the_plain_bootstrap() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 3.0, 5.0]
    assert ratio_ci(a, b) == ratio_ci(a, b, block=1)
