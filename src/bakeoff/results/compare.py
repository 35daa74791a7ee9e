"""Compares two runs case by case (`bakeoff compare`), flagging regressions.

Only records are read (no framework is imported), so comparing is instant and works on half-finished
runs.

The regression rule, for every speed case measured in both runs (training step times without the
first step, pipeline samples/s per pass, inference latency per batch size):

- the ratio is B's median over A's, with a bootstrap 95% confidence interval over rounds first and
  the calls inside each round second (inference: the rounds of each run; training: the timing
  rounds that follow training, or contiguous segments of the run's steps in runs from before them;
  pipeline: passes), so drift between rounds widens the interval;
- where the whole interval lies beyond the practical margin (`threshold`, 5% by default) on the slow
  side, B is slower by more than the margin for sure: a REGRESSION; the mirror image is an
  improvement. Each case is judged against its stage's common shift (the machine's speed), and a
  regression or improvement must show in the raw ratio too;
- where the whole interval lies inside ±margin: "no practical difference" (or "within the run-to-run
  spread" where only the stage's spread, wider than the margin, holds it);
- otherwise a change that may be under the margin: a "minor slowdown" or "minor speedup" when the
  interval excludes 1.0, "no significant difference" when it does not. Neither is flagged.

A stage the machine guard found busy in either run is shown but judges nothing. A training mode is timed
in the worker processes of one run, so where its times were noisy (IQR over 10% of the median in A or
B) its regression or improvement is shown as "not judged: noisy training window"; an input pipeline's
passes likewise ("not judged: noisy pipeline window").

Two runs that are not like for like (another model or spec, other options, a quick run against a full
one) are compared and shown, but nothing in them is called a regression: the difference may be the
setup's.

Quality: an accuracy drop of more than 0.5 points (classification), an MSE more than 5% worse
(regression task), an int8 gate that passed in A and fails in B, or a case ok in A and failed in B
is a regression as well.

The thresholds, verdict words and row types are in comparison.py; the warnings that A and B are not
like for like in comparability.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bakeoff.measure import rounds
from bakeoff.measure.guard import noisy_stages
from bakeoff.measure.stats import Ratio, hierarchical_ratio_ci, summarize
from bakeoff.results.comparability import comparability_warnings, not_like_for_like
from bakeoff.results.comparison import (
    ACCURACY_POINTS,
    CHANGED,
    IMPROVEMENT,
    MINOR_SLOWDOWN,
    MINOR_SPEEDUP,
    MSE_RELATIVE,
    NO_PRACTICAL_DIFFERENCE,
    NOT_COMPARED,
    NOT_JUDGED_WHEN_NOISY,
    REGRESSION,
    SAME,
    SPEED_THRESHOLD,
    UNCHANGED,
    WITHIN_SPREAD,
    Comparison,
    QualityRow,
    SpeedRow,
    StatusRow,
)
from bakeoff.results.run import Run
from bakeoff.results.runs import parity_diff, timed_cases
from bakeoff.runtimes import RUNTIMES


def compare(
    a: Run,
    b: Run,
    *,
    threshold: float = SPEED_THRESHOLD,
    n_boot: int = 2000,
    seed: int = 0,
    absolute: bool = False,
) -> Comparison:
    """Every case of A against the same case of B (B/A); see the module docstring for the rule."""
    if threshold < 0:
        raise ValueError(f"threshold must be 0 or more, got {threshold}")
    judge = _Judge(threshold, n_boot, seed)
    speed = [*_train_rows(a, b, judge), *_pipeline_rows(a, b, judge), *_infer_rows(a, b, judge)]
    shifts = {} if absolute else stage_shifts(speed)
    spreads = {} if absolute else stage_spreads(speed, shifts)
    groups = _groups(speed)
    speed = [
        _against_shift(r, shifts.get(groups[id(r)]), threshold, spreads.get(r.stage, 0.0)) for r in speed
    ]
    quality, status = _quality_rows(a, b), _status_rows(a, b)
    busy = {**noisy_stages(a.info.get("guard")), **noisy_stages(b.info.get("guard"))}
    # A slowdown measured on a busy machine may be the other processes': shown, not called.
    speed = [replace(r, verdict=_unjudged(r.verdict)) if r.stage in busy else r for r in speed]
    speed = [_one_process_noise(r) for r in speed]
    unlike = not_like_for_like(a, b)
    if unlike:
        speed = [replace(r, verdict=_unjudged(r.verdict)) for r in speed]
        quality = [replace(r, verdict=_unjudged(r.verdict)) for r in quality]
        status = [replace(r, verdict=_unjudged(r.verdict)) for r in status]
    only_a, only_b = _only_in_one(a, b)
    return Comparison(
        a=a,
        b=b,
        threshold=threshold,
        warnings=comparability_warnings(a, b),
        speed=speed,
        quality=quality,
        status=status,
        only_a=only_a,
        only_b=only_b,
        unlike=unlike,
        shifts=shifts,
        spreads=spreads,
        absolute=absolute,
    )


# A stage's common shift is taken from at least this many cases: fewer cannot tell one case's change
# from the machine's.
MIN_SHIFT_CASES = 3


def shift_group(row: SpeedRow) -> str:
    """The group a case's common shift is taken over: its stage, and for inference the worker process
    that ran it (torch, keras or native), since the cases of one process move together."""
    if row.stage == "infer":
        runtime = RUNTIMES.get(row.case.split("/", 1)[0])
        if runtime is not None:
            return f"infer ({runtime.worker})"
    return row.stage


def stage_shifts(rows: list[SpeedRow]) -> dict[str, float]:
    """Per group (`shift_group`), the median slowdown of all its cases (B against A): what they share.

    On a shared machine the speed itself moves between runs (on the 2-core VM bakeoff is built on, a
    fixed loop runs ~1.8x faster or slower from one few seconds to the next, with nothing else
    running), and every case measured in the same few seconds, or in the same worker process, moves
    with it. A code change moves some cases; the machine moves all of them. Each case is judged
    against its group's shift; a group of fewer than MIN_SHIFT_CASES falls back to its stage."""
    groups = _groups(rows)
    out = {}
    for group in dict.fromkeys(groups.values()):
        slowdowns = [r.slowdown for r in rows if groups[id(r)] == group and r.slowdown]
        if len(slowdowns) >= MIN_SHIFT_CASES:
            out[group] = float(np.median(slowdowns))
    return out


def _groups(rows: list[SpeedRow]) -> dict[int, str]:
    by_group = Counter(shift_group(r) for r in rows if r.ratio)
    return {id(r): g if by_group[g := shift_group(r)] >= MIN_SHIFT_CASES else r.stage for r in rows}


# A stage's spread is read from at least this many cases, and a case must stand this many spreads
# away from its stage's shift before it is called a regression.
MIN_SPREAD_CASES = 5
SPREAD_Z = 3.0


def stage_spreads(rows: list[SpeedRow], shifts: dict[str, float]) -> dict[str, float]:
    """Per stage, how far a case may move from run to run around its group's shift with no change in
    the code: SPREAD_Z robust standard deviations (1.4826 x the median absolute deviation) of the
    cases' log slowdowns against their shifts, as a relative change (0.3 = 30%).

    Within one run, rounds see the drift of a few seconds; two runs minutes apart on a shared machine
    differ by more, and differently for each kind of work (an int8 ONNX Runtime case moves more than an
    fp32 one when the host's shared cores are busy). The cases of a stage show that spread between the
    two runs themselves (an empirical null, after Efron): a case is a regression only beyond it and
    beyond the margin. One slowed case among many barely moves the median or the MAD."""
    groups = _groups(rows)
    out = {}
    for stage in dict.fromkeys(r.stage for r in rows):
        logs = np.log(
            [
                r.slowdown / shifts[groups[id(r)]]
                for r in rows
                if r.stage == stage and r.slowdown and groups[id(r)] in shifts
            ]
        )
        if logs.size >= MIN_SPREAD_CASES:
            mad = float(np.median(np.abs(logs - np.median(logs))))
            out[stage] = float(np.exp(SPREAD_Z * 1.4826 * mad) - 1.0)
    return out


def _against_shift(row: SpeedRow, shift: float | None, threshold: float, spread: float) -> SpeedRow:
    """`row` judged on its ratio divided by its stage's shift (the ratio shown stays the raw one), with
    the wider of --margin (`threshold`) and the stage's run-to-run `spread` as its margin."""
    if row.ratio is None:
        return row
    margin = max(threshold, spread)
    judged = row.ratio
    if shift:
        factor = 1.0 / shift if row.higher_is_better else shift
        r = row.ratio
        judged = Ratio(r.ratio / factor, r.low / factor, r.high / factor, r.level, r.n_boot)
    verdict = speed_verdict(judged, higher_is_better=row.higher_is_better, threshold=margin)
    raw = speed_verdict(row.ratio, higher_is_better=row.higher_is_better, threshold=margin)
    flagged = (REGRESSION, IMPROVEMENT)
    if verdict in flagged and raw in flagged and raw != verdict:
        # Opposite ways: slower than A but faster than its stage (or the reverse). The machine's swing
        # and the case's own change cannot be told apart: neither is called.
        verdict = SAME
    elif verdict in flagged and raw != verdict:
        # Against the shift alone a case that stood still while the rest of its stage sped up would be a
        # regression: an A/A pair of quick runs did exactly that (the eager modes stayed, the compiled ones
        # ran 1.26x faster). A regression (or an improvement) must show in the raw ratio as well, beyond
        # the same margin: an A/A pair's pipeline case moved 1.27x (CI 1.08-1.52) inside a ±18% spread.
        judged, verdict = row.ratio, raw
    if verdict == NO_PRACTICAL_DIFFERENCE and judged.practical(threshold) != "equivalent":
        verdict = WITHIN_SPREAD
    return replace(row, relative=judged if judged is not row.ratio else None, verdict=verdict, margin=margin)


def _one_process_noise(row: SpeedRow) -> SpeedRow:
    """A training mode is timed in the worker processes of one run (its training, then its timing
    rounds in the same process; inference starts fresh processes between rounds), and an input
    pipeline's passes in one worker too, so their intervals cannot see how far the next run moves.
    Where their times were noisy (IQR over 10% of the median in A or B), a regression or improvement is
    shown, not called: three A/A full runs of simplenet on a 2-core VM had torch-eager's step at 1.57,
    2.77 and 1.79 ms, each run's segments steady, and every mode's window noisy; two A/A quick runs had
    tf.data/autotune at 12,310 and 7,476 samples/s, its passes noisy."""
    if row.stage in NOT_JUDGED_WHEN_NOISY and row.noisy and row.verdict in (REGRESSION, IMPROVEMENT):
        return replace(row, verdict=NOT_JUDGED_WHEN_NOISY[row.stage])
    return row


def _unjudged(verdict: str) -> str:
    """A regression or improvement between runs that are not like for like is only a change."""
    return CHANGED if verdict in (REGRESSION, IMPROVEMENT, "fixed") else verdict


def speed_verdict(ratio: Ratio, *, higher_is_better: bool, threshold: float = SPEED_THRESHOLD) -> str:
    """The rule for one ratio B/A of medians (see the module docstring)."""
    practical = ratio.practical(threshold)
    if practical == "equivalent":
        return NO_PRACTICAL_DIFFERENCE
    if not ratio.significant:
        return SAME
    # The interval, not the point estimate, picks the direction (as Ratio.verdict does).
    b_slower = (ratio.high < 1.0) if higher_is_better else (ratio.low > 1.0)
    if practical == "win":
        return REGRESSION if b_slower else IMPROVEMENT
    return MINOR_SLOWDOWN if b_slower else MINOR_SPEEDUP


@dataclass(frozen=True)
class _Judge:
    """The rule's settings, applied to one pair of raw samples at a time."""

    threshold: float
    n_boot: int
    seed: int

    def row(
        self,
        where: tuple[str, str, int | None],  # stage, case, batch
        metric: str,
        a_rounds: list[np.ndarray],
        b_rounds: list[np.ndarray],
        *,
        higher_is_better: bool,
    ) -> SpeedRow:
        a_values, b_values = np.concatenate(a_rounds), np.concatenate(b_rounds)
        try:
            # Two runs are never measured side by side: their rounds are drawn independently.
            ratio: Ratio | None = hierarchical_ratio_ci(
                b_rounds, a_rounds, paired=False, n_boot=self.n_boot, seed=self.seed
            )
        except ValueError:
            ratio = None  # empty, NaN or non-positive samples: the medians are shown, no verdict
        verdict = (
            speed_verdict(ratio, higher_is_better=higher_is_better, threshold=self.threshold)
            if ratio
            else NOT_COMPARED
        )
        scale = 1.0 if higher_is_better else 1000.0  # times are stored in seconds, shown in ms
        return SpeedRow(
            *where,
            metric=metric,
            higher_is_better=higher_is_better,
            a=_median(a_values) * scale,
            b=_median(b_values) * scale,
            n_a=int(a_values.size),
            n_b=int(b_values.size),
            ratio=ratio,
            verdict=verdict,
            noisy=any(v.size > 1 and summarize(v).noisy for v in (a_values, b_values)),
        )


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


def _pairs(a: Run, b: Run, stage: str, key: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Cases ok in both runs whose metrics hold `key`, in A's order."""
    b_cases = {r["case"]: r for r in timed_cases(b, stage) if key in r["metrics"]}
    return [
        (r["case"], r["metrics"], b_cases[r["case"]]["metrics"])
        for r in timed_cases(a, stage)
        if key in r["metrics"] and r["case"] in b_cases
    ]


def _train_rows(a: Run, b: Run, judge: _Judge) -> list[SpeedRow]:
    # Both runs' timing rounds where both have them for every mode compared, else both runs' training
    # steps in segments (which leave out the first step, compile/trace time, as training.py's
    # statistics do): a stage's rows and its shift come from one source.
    pairs = _pairs(a, b, "train", "step_times")
    modes = [case for case, _, _ in pairs]
    both = rounds.timing_of(a.train_timing, modes) and rounds.timing_of(b.train_timing, modes)
    ta, tb = (a.train_timing, b.train_timing) if both else (None, None)
    return [
        judge.row(
            ("train", case, None),
            "step ms",
            rounds.of_mode(ma, ta, case),
            rounds.of_mode(mb, tb, case),
            higher_is_better=False,
        )
        for case, ma, mb in pairs
    ]


def _pipeline_rows(a: Run, b: Run, judge: _Judge) -> list[SpeedRow]:
    rows = []
    for case, ma, mb in _pairs(a, b, "pipeline", "samples_per_s"):
        raw_a = (ma.get("raw") or {}).get("samples_per_s")
        raw_b = (mb.get("raw") or {}).get("samples_per_s")
        if raw_a and raw_b:
            # Each pass over the data is a round of one value.
            rows.append(
                judge.row(
                    ("pipeline", case, None),
                    "samples/s",
                    [np.array([v]) for v in raw_a],
                    [np.array([v]) for v in raw_b],
                    higher_is_better=True,
                )
            )
        else:  # a record with only the median: shown, but without an interval there is no verdict
            rows.append(
                SpeedRow(
                    *("pipeline", case, None, "samples/s"),
                    higher_is_better=True,
                    a=float(ma["samples_per_s"]),
                    b=float(mb["samples_per_s"]),
                    n_a=0,
                    n_b=0,
                    ratio=None,
                    verdict=NOT_COMPARED,
                    noisy=False,
                )
            )
    return rows


def _infer_rows(a: Run, b: Run, judge: _Judge) -> list[SpeedRow]:
    rows = []
    for case, ma, mb in _pairs(a, b, "infer", "batches"):
        for size in sorted(set(ma["batches"]) & set(mb["batches"]), key=int):
            ba, bb = ma["batches"][size], mb["batches"][size]
            if ba.get("times") and bb.get("times"):
                rows.append(
                    judge.row(
                        ("infer", case, int(size)),
                        "latency ms",
                        rounds.of_batch(ba),
                        rounds.of_batch(bb),
                        higher_is_better=False,
                    )
                )
    return rows


# Quality -------------------------------------------------------------------------------------------


def _classification(run: Run) -> bool:
    task = (run.info.get("spec") or {}).get("task") or {}
    return task.get("type", "classification") != "regression"


def _score_row(
    stage: str, case: str, name: str, a: float | None, b: float | None, classification: bool
) -> QualityRow:
    metric = name if classification else "MSE"
    if a is None or b is None:
        # null is a NaN score: a model that diverged. Losing a score is a regression, gaining one not.
        verdict = REGRESSION if b is None and a is not None else UNCHANGED
        shown_a, shown_b = (
            (a if classification or a is None else -a),
            (b if classification or b is None else -b),
        )
        change = "no score" if b is None else "score regained" if a is None else ""
        return QualityRow(stage, case, metric, shown_a, shown_b, change, verdict)
    if classification:
        points = 100.0 * (b - a)
        verdict = (
            REGRESSION
            if points < -ACCURACY_POINTS
            else IMPROVEMENT
            if points > ACCURACY_POINTS
            else UNCHANGED
        )
        return QualityRow(stage, case, metric, a, b, f"{points:+.2f} pts", verdict)
    mse_a, mse_b = -a, -b  # regression scores are stored as -MSE so that higher is better everywhere
    rel = (mse_b - mse_a) / mse_a if mse_a else 0.0
    verdict = REGRESSION if rel > MSE_RELATIVE else IMPROVEMENT if rel < -MSE_RELATIVE else UNCHANGED
    return QualityRow(stage, case, metric, mse_a, mse_b, f"MSE {100 * rel:+.1f}%", verdict)


def _quality_rows(a: Run, b: Run) -> list[QualityRow]:
    classification = _classification(a) and _classification(b)
    rows: list[QualityRow] = []
    pa, pb = parity_diff(a), parity_diff(b)
    if pa is not None or pb is not None:
        # Shown for context only: crossing the tolerance fails the parity record, caught as a status change.
        rows.append(QualityRow("parity", "outputs", "max abs output diff", pa, pb, "", ""))
    for stage, case, name, sa, sb in _scores(a, b):
        rows.append(_score_row(stage, case, name, sa, sb, classification))
    for stage, case, ga, gb in _gates(a, b):
        verdict = (
            REGRESSION
            if (ga, gb) == ("pass", "fail")
            else IMPROVEMENT
            if (ga, gb) == ("fail", "pass")
            else UNCHANGED
        )
        rows.append(QualityRow(stage, case, "gate", ga, gb, "" if ga == gb else f"{ga} -> {gb}", verdict))
    return rows


def _score_of(record: dict[str, Any]) -> tuple[str, float | None] | None:
    """(what, score) of a training mode, the export fit, an artifact or an inference case; None if it
    has none."""
    m = record["metrics"]
    if "val_acc" in m and record["stage"] in ("train", "export"):
        return "val acc", m["val_acc"]
    for holder in ("verification", "quality"):
        if isinstance(m.get(holder), dict) and "accuracy" in m[holder]:
            return "accuracy", m[holder]["accuracy"]
    return None


def _scores(a: Run, b: Run) -> list[tuple[str, str, str, float | None, float | None]]:
    out = []
    for stage in ("train", "export", "infer"):
        b_cases = {r["case"]: r for r in b.stage(stage) if r["status"] == "ok"}
        for ra in a.stage(stage):
            rb = b_cases.get(ra["case"])
            if ra["status"] != "ok" or rb is None:
                continue
            sa, sb = _score_of(ra), _score_of(rb)
            if sa and sb:
                out.append((stage, ra["case"], sa[0], sa[1], sb[1]))
    return out


def _gates(a: Run, b: Run) -> list[tuple[str, str, str, str]]:
    out = []
    for stage in ("export", "infer"):
        b_gates = {r["case"]: r["metrics"].get("gate") for r in b.stage(stage) if r["status"] == "ok"}
        for ra in a.stage(stage):
            ga, gb = ra["metrics"].get("gate"), b_gates.get(ra["case"])
            if ra["status"] == "ok" and isinstance(ga, str) and isinstance(gb, str):
                out.append((stage, ra["case"], ga, gb))
    return out


# Status and coverage -------------------------------------------------------------------------------

Key = tuple[str, str, str | None]


def _keyed(a: Run, b: Run) -> tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]]:
    """Both runs' newest records by (stage, case, framework), where the framework counts only for a
    case name recorded once per framework (the pipeline's input-bound verdict, the training peak): a
    case whose failure record names no framework is still the same case."""
    shared: set[tuple[str, str]] = set()
    for run in (a, b):
        counts = Counter((r["stage"], r["case"]) for r in run.latest)
        shared |= {name for name, count in counts.items() if count > 1}

    def key(r: dict[str, Any]) -> Key:
        return (r["stage"], r["case"], r["framework"] if (r["stage"], r["case"]) in shared else None)

    return {key(r): r for r in a.latest}, {key(r): r for r in b.latest}


def _label(key: Key) -> str:
    return f"{key[1]} ({key[2]})" if key[2] else key[1]


def _status_rows(a: Run, b: Run) -> list[StatusRow]:
    ka, kb = _keyed(a, b)
    rows = []
    for key, ra in ka.items():
        rb = kb.get(key)
        if rb is None or (ra["status"], rb["status"]) == ("ok", "ok"):
            continue
        verdict = {("ok", "failed"): REGRESSION, ("failed", "ok"): "fixed"}.get(
            (ra["status"], rb["status"]), "still failing"
        )
        message = rb["message"] if rb["status"] == "failed" else ra["message"]
        rows.append(StatusRow(key[0], _label(key), ra["status"], rb["status"], verdict, str(message)))
    return rows


def _only_in_one(a: Run, b: Run) -> tuple[list[str], list[str]]:
    """The cases recorded in one run only, as "stage case"."""
    ka, kb = _keyed(a, b)
    return (
        [f"{k[0]} {_label(k)}" for k in ka if k not in kb],
        [f"{k[0]} {_label(k)}" for k in kb if k not in ka],
    )
