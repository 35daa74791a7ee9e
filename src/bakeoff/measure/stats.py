"""Summarises repeated measurements and compares two of them with a bootstrap ratio of medians."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# What callers hold: lists of floats, or numpy arrays straight from a worker's npz.
Samples = Sequence[float] | np.ndarray

# IQR/median above this marks a measurement as noisy: the report warns instead of trusting it.
NOISE_THRESHOLD = 0.10

# Bootstrap resamples are drawn in blocks of at most this many values, so ten thousand samples times
# two thousand resamples never needs gigabytes at once.
_BLOCK_VALUES = 2_000_000


# Below this many samples a p99 is just their maximum: reports show it as missing, not as a p99.
P99_MIN_SAMPLES = 100


@dataclass(frozen=True)
class Stats:
    """Order statistics of one set of samples (times in seconds, or throughputs)."""

    median: float
    iqr: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float
    n: int

    @property
    def rel_iqr(self) -> float:
        return self.iqr / self.median if self.median else 0.0

    @property
    def noisy(self) -> bool:
        return self.rel_iqr > NOISE_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rel_iqr": self.rel_iqr, "noisy": self.noisy}


def summarize(samples: Samples) -> Stats:
    values = _as_array(samples, "samples")
    p25, p50, p75, p90, p99 = np.percentile(values, [25, 50, 75, 90, 99])
    return Stats(
        median=float(p50),
        iqr=float(p75 - p25),
        p90=float(p90),
        p99=float(p99),
        mean=float(values.mean()),
        min=float(values.min()),
        max=float(values.max()),
        n=int(values.size),
    )


@dataclass(frozen=True)
class Ratio:
    """median(a) / median(b) with a bootstrap confidence interval [low, high]."""

    ratio: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 2000

    @property
    def significant(self) -> bool:
        return self.low > 1.0 or self.high < 1.0

    def verdict(
        self, a_name: str, b_name: str, higher_is_better: bool = False, adjective: str = "faster"
    ) -> str:
        """One sentence naming the winner, or saying there is none.

        For times (lower is better) a ratio under 1 means `a` wins; for throughputs the reverse. The
        factor is always stated as a number above 1 ("1.84x faster"), so the interval is inverted with
        it when `b` is the winner.
        """
        ci = f"{self.level:.0%} CI"
        if not self.significant:
            return f"no significant difference (ratio {self.ratio:.2f}, {ci} {self.low:.2f}-{self.high:.2f})"
        # The interval, not the point estimate, picks the direction: with few samples a median ratio
        # can sit just outside its own percentile interval.
        above = self.low > 1.0
        a_wins = above == higher_is_better
        if above:
            factor, low, high = self.ratio, self.low, self.high
        else:
            factor, low, high = 1.0 / self.ratio, 1.0 / self.high, 1.0 / self.low
        winner, loser = (a_name, b_name) if a_wins else (b_name, a_name)
        return f"{winner} is {factor:.2f}x {adjective} than {loser} ({ci} {low:.2f}-{high:.2f})"

    def practical(self, margin: float) -> str:
        """'win' when the whole CI lies outside ±margin (in ratio terms, 1+m and 1/(1+m)), 'equivalent'
        when it lies inside, else 'undecided': a difference that may be under the margin is no win."""
        if self.low > 1.0 + margin or self.high < 1.0 / (1.0 + margin):
            return "win"
        if self.low >= 1.0 / (1.0 + margin) and self.high <= 1.0 + margin:
            return "equivalent"
        return "undecided"

    def practical_verdict(self, a_name: str, b_name: str, margin: float, adjective: str = "faster") -> str:
        """`verdict` with the practical margin: how big the win is, and whether it matters."""
        ci = f"{self.level:.0%} CI {self.low:.2f}-{self.high:.2f}"
        kind = self.practical(margin)
        if kind == "win":
            return f"{self.verdict(a_name, b_name, adjective=adjective)}, outside the ±{margin:.0%} margin"
        if kind == "equivalent":
            return f"no practical difference: within ±{margin:.0%} (ratio {self.ratio:.2f}, {ci})"
        under = f"the difference may be under the ±{margin:.0%} margin"
        return f"not decided: {under} (ratio {self.ratio:.2f}, {ci})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def ratio_ci(
    a: Samples, b: Samples, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0, block: int | None = 1
) -> Ratio:
    """Percentile bootstrap of median(a) / median(b), resampling a and b independently.

    `block` > 1 resamples runs of that many consecutive samples (a moving-block bootstrap): the steps
    of one training run are not independent (warm caches, clock and thermal drift), and resampling
    them one by one would make the interval too narrow. None picks n ** (1/3), a common choice."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    a_values, b_values = _as_positive(a, "a"), _as_positive(b, "b")
    rng = np.random.default_rng(seed)
    ratios = _boot_medians(a_values, n_boot, rng, block) / _boot_medians(b_values, n_boot, rng, block)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    ratio = float(np.median(a_values) / np.median(b_values))
    return Ratio(ratio=ratio, low=float(low), high=float(high), level=level, n_boot=n_boot)


def hierarchical_ratio_ci(
    a_rounds: Sequence[Samples],
    b_rounds: Sequence[Samples],
    *,
    paired: bool = False,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> Ratio:
    """Bootstrap of median(a) / median(b) over rounds, then over the calls inside each drawn round.

    A round is one stretch of measuring (a worker, a window of time); the drift between rounds is what
    makes two runs of the same code differ, and resampling calls alone cannot see it. Each resample
    draws as many rounds as there are, with replacement, and the same number of calls from each drawn
    round (the shortest round's count, at most `_CALLS_PER_ROUND`), so every round weighs the same.
    `paired`: a and b were measured side by side, round k of each in the same stretch of time
    (interleaved), so the same rounds are drawn for both and drift they share cancels in the ratio.
    With a single round on either side there is nothing between rounds to see, and this is the
    moving-block bootstrap of `ratio_ci` over that round's calls."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    a_list = [_as_positive(r, "a") for r in a_rounds]
    b_list = [_as_positive(r, "b") for r in b_rounds]
    if not a_list or not b_list:
        raise ValueError("at least one round on each side is needed")
    a_all, b_all = np.concatenate(a_list), np.concatenate(b_list)
    if len(a_list) == 1 or len(b_list) == 1:
        return ratio_ci(a_all, b_all, level=level, n_boot=n_boot, seed=seed, block=None)
    rng = np.random.default_rng(seed)
    a_pick = rng.integers(0, len(a_list), size=(n_boot, len(a_list)))
    same = paired and len(a_list) == len(b_list)
    b_pick = a_pick if same else rng.integers(0, len(b_list), size=(n_boot, len(b_list)))
    ratios = _round_medians(a_list, a_pick, rng) / _round_medians(b_list, b_pick, rng)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    ratio = float(np.median(a_all) / np.median(b_all))
    return Ratio(ratio=ratio, low=float(low), high=float(high), level=level, n_boot=n_boot)


# Calls drawn from each round in one hierarchical resample: enough for a stable median, few enough that
# a thousand resamples of five rounds stay a few megabytes.
_CALLS_PER_ROUND = 200


def _round_medians(rounds: list[np.ndarray], picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lengths = np.array([r.size for r in rounds])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.concatenate(rounds)
    calls = int(min(lengths.min(), _CALLS_PER_ROUND))
    out = np.empty(picks.shape[0])
    rows = max(1, _BLOCK_VALUES // (picks.shape[1] * calls))
    for first in range(0, picks.shape[0], rows):
        chosen = picks[first : first + rows]
        offsets = rng.random((*chosen.shape, calls)) * lengths[chosen][..., None]
        index = starts[chosen][..., None] + offsets.astype(np.int64)
        out[first : first + rows] = np.median(flat[index].reshape(chosen.shape[0], -1), axis=1)
    return out


def _boot_medians(values: np.ndarray, n_boot: int, rng: np.random.Generator, block: int | None) -> np.ndarray:
    n = values.size
    run = max(1, min(n, round(n ** (1 / 3)) if block is None else block))
    starts_per_row = -(-n // run)  # enough runs to cover n samples
    rows_per_chunk = max(1, _BLOCK_VALUES // (starts_per_row * run))
    chunks = []
    for start in range(0, n_boot, rows_per_chunk):
        rows = min(rows_per_chunk, n_boot - start)
        starts = rng.integers(0, n - run + 1, size=(rows, starts_per_row))
        index = (starts[:, :, None] + np.arange(run)).reshape(rows, -1)[:, :n]
        chunks.append(np.median(values[index], axis=1))
    return np.concatenate(chunks)


def _as_array(samples: Samples, name: str) -> np.ndarray:
    values = np.asarray(samples, dtype=float).ravel()
    if values.size == 0:
        raise ValueError(f"{name} is empty: at least one sample is needed")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return values


def _as_positive(samples: Samples, name: str) -> np.ndarray:
    # A ratio of times or throughputs is only meaningful for positive values; a zero would also let
    # a resampled median divide by zero.
    values = _as_array(samples, name)
    if np.any(values <= 0):
        raise ValueError(f"{name} must hold positive values only, got minimum {values.min()}")
    return values
