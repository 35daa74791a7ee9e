"""The recommendation: the seed article's checklist (goal, team, deployment target, hardware) applied to
what this run measured. Every reason quotes a number from the run. A side wins a dimension only when the
whole confidence interval of its advantage lies outside the practical margin (default ±5%); inside it the
finding is "no practical difference", and an interval that straddles it decides nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bakeoff.errors import UsageError
from bakeoff.measure import DEFAULT_MARGIN, rounds
from bakeoff.measure.guard import advice, noisy_stages
from bakeoff.measure.stats import Ratio
from bakeoff.report import wording
from bakeoff.report.digest import family
from bakeoff.report.targets import (
    EXPORTER_CASES,
    SERVER_TARGETS,
    SIDES,
    TARGET_ARTIFACTS,
    TARGET_NOTES,
    WEIGHTS,
    contenders,
    runnable,
)
from bakeoff.results.run import Run
from bakeoff.results.runs import QUICK_WHY

CHOICES = {
    "goal": ("research", "production", "scale-out"),
    "team": ("pythonic", "structured"),
    "deploy": ("cloud", "mobile", "edge", "browser", "containers"),
    "hardware": ("cpu", "gpu"),
}
DEFAULTS = {"goal": "production", "team": "pythonic", "deploy": "cloud", "hardware": "cpu"}


@dataclass(frozen=True)
class Constraints:
    goal: str = DEFAULTS["goal"]
    team: str = DEFAULTS["team"]
    deploy: str = DEFAULTS["deploy"]
    hardware: str = DEFAULTS["hardware"]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> Constraints:
        unknown = sorted(set(values) - set(CHOICES))
        if unknown:
            raise UsageError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(CHOICES)}")
        for key, value in values.items():
            if value not in CHOICES[key]:
                raise UsageError(f"{source}: {key} must be one of {', '.join(CHOICES[key])}, got {value!r}")
        return cls(**{**DEFAULTS, **values})

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# The stage whose timings decide each dimension: a busy machine during it leaves the dimension undecided.
# (debuggability is not decided by timings: a busy machine leaves it as it is.)
DIMENSION_STAGES = {
    "training": "train",
    "inference": "infer",
    "serving": "serve",
    "scale-out": "distributed",
}
# The servers that stand for each side's serving path (Triton and Ray Serve serve the PyTorch artifact here).
SERVING_SIDES = {"TensorFlow": ("tf-serving",), "PyTorch": ("torchserve", "triton", "ray")}
BUSY = "not decided: the machine was busy"
# The dimensions a --quick run measures but does not decide (results.runs.QUICK_WHY says why).
QUICK_UNDECIDED = ("training", "inference")
QUICK = f"not decided: {QUICK_WHY}"


@dataclass
class Dimension:
    name: str  # 'training', 'inference', 'deployment', 'debuggability'
    title: str
    winner: str | None  # 'PyTorch', 'TensorFlow', or None
    finding: str  # one line: who wins and by how much, "no practical difference", or "not measured"
    reasons: list[str] = field(default_factory=list)
    weight: int = 1
    # A speed dimension left undecided (its CI straddles the margin) whose point estimate lies beyond
    # the margin: the side it leans to. It wins nothing, but an overall winner it could overturn is none.
    lean: str | None = None


@dataclass
class Verdict:
    constraints: Constraints
    overall: str | None
    headline: str
    dimensions: list[Dimension]
    caveats: list[str]
    margin: float = DEFAULT_MARGIN

    def to_dict(self) -> dict[str, Any]:
        return {
            "constraints": self.constraints.to_dict(),
            "overall": self.overall,
            "headline": self.headline,
            "dimensions": [asdict(d) for d in self.dimensions],
            "caveats": self.caveats,
            "margin": self.margin,
        }


def recommend(run: Run, constraints: Constraints, margin: float | None = None) -> Verdict:
    """The verdict for `constraints`; `margin` None: the one the run was started with (or 5%)."""
    if margin is None:
        margin = float(run.info.get("options", {}).get("margin", DEFAULT_MARGIN))
    if not 0 <= margin < 1:
        raise UsageError(f"--margin {margin}: a share from 0 up to 1, e.g. 0.05 for ±5%")
    caveats = _caveats(run, constraints)
    weights = WEIGHTS[constraints.goal]
    dims = [
        _training(run, margin),
        _inference(run, constraints, margin),
        _deployment(run, constraints),
        _debuggability(run, constraints, margin),
        _serving(run, margin),
    ]
    if "scale-out" in weights:  # only a goal that asks for it weighs training spread over workers
        dims.append(_scale_out(run, margin))
    for dim in dims:
        dim.weight = weights[dim.name]
    backends = _keras_backends(run, margin)
    if run.info.get("options", {}).get("quick"):
        for dim in dims:
            # "No practical difference" from one short stretch is as unsafe as a win: the next quick run
            # may put the same pair outside the margin.
            if dim.name in QUICK_UNDECIDED and not dim.finding.startswith(("not measured", "not decided")):
                dim.reasons.append(f"measured: {dim.finding}")
                dim.winner, dim.finding, dim.lean = None, QUICK, None
    busy = noisy_stages(run.info.get("guard"))
    for dim in dims:
        stage = DIMENSION_STAGES.get(dim.name)
        if stage in busy and not dim.finding.startswith("not measured"):
            # A win measured on a busy machine may be the other processes': it is shown, not counted.
            dim.reasons.append(f"measured: {dim.finding}")
            dim.winner, dim.lean = None, None
            dim.finding = f"{BUSY} during the {stage} stage ({busy[stage]})"
    unbuilt = _twins_not_built(run)
    if unbuilt:
        # Without twins nothing measured compares one model in two frameworks: no dimension is decided.
        for dim in dims:
            dim.winner, dim.finding = None, f"not decided: {unbuilt}"
        headline = f"No verdict: {unbuilt}, so no number in this run compares one model in two frameworks."
        return Verdict(constraints, None, headline, dims, caveats, margin)
    score = {side: sum(d.weight for d in dims if d.winner == side) for side in SIDES}
    decided = [d for d in dims if d.winner]
    overall = None if score["PyTorch"] == score["TensorFlow"] else max(score, key=lambda s: score[s])
    against = [d for d in dims if d.winner is None and d.lean and d.lean != overall]
    if overall and score[overall] - score[_other(overall)] <= sum(d.weight for d in against):
        # A lead that the undecided dimensions leaning the other way could overturn is no verdict: the
        # next run of the same config, deciding one of them, would name the other side.
        headline = _close_call(overall, dims, against, constraints)
        return Verdict(constraints, None, headline, dims + backends, caveats, margin)
    headline = _headline(overall, dims, score, constraints, decided, margin)
    # Shown beside the dimensions, never scored: Keras on another backend is neither side of the question.
    return Verdict(constraints, overall, headline, dims + backends, caveats, margin)


def _keras_backends(run: Run, margin: float) -> list[Dimension]:
    """'Keras off TensorFlow': does a Keras team lose anything by running on PyTorch or JAX underneath
    (report/backends.py)? Weight 0 and no winner: a finding with its numbers, outside the score."""
    from bakeoff.report.backends import findings

    busy = noisy_stages(run.info.get("guard"))
    found = findings(run, margin, frozenset(busy))
    if not found:
        return []
    finding = "; ".join(f.sentence() for f in found)
    reasons = [reason for f in found for reason in f.reasons]
    if any(stage in busy for stage in ("train", "infer")):
        finding += " (speed not decided: the machine was busy)"
        reasons.append(advice(busy))
    return [Dimension("keras-backends", "Keras off TensorFlow", None, finding, reasons, weight=0)]


def _twins_not_built(run: Run) -> str:
    """Why the twins could not be built (the parity stage failed before comparing anything), or ''."""
    record = run.case("parity", "outputs")
    if record and record["status"] == "failed" and not record.get("metrics"):
        return f"the twins could not be built ({record['message']})"
    return ""


def _headline(
    overall: str | None,
    dims: list[Dimension],
    score: dict[str, int],
    c: Constraints,
    decided: list[Dimension],
    margin: float,
) -> str:
    target = f"{c.goal}, deploying to {c.deploy} on {c.hardware}"
    if all(d.finding.startswith("not measured") for d in dims):
        return f"No winner for {target}: this run measured no dimension the verdict weighs."
    busy = [d.title for d in dims if d.finding.startswith(BUSY)]
    if not decided and busy:
        return (
            f"No winner for {target}: the machine was busy while {', '.join(busy)} were measured, so "
            "they are not decided; rerun on a quiet machine."
        )
    quick = [d.title for d in dims if d.finding == QUICK]
    if not decided and quick:
        return (
            f"No winner for {target}: a --quick run shows {' and '.join(quick)} but does not decide "
            f"{'it' if len(quick) == 1 else 'them'} (see each dimension for what it measured); run without "
            "--quick to decide."
        )
    if not decided:
        return f"No winner for {target}: no dimension showed a difference outside the ±{margin:.0%} margin."
    if overall is None:
        return (
            f"No clear winner for {target}: the dimensions that differ split evenly "
            f"({score['PyTorch']} to {score['TensorFlow']} by weight)."
        )
    won = [d for d in dims if d.winner == overall]
    lost = [d for d in dims if d.winner and d.winner != overall]
    text = f"{overall} for {target}: it wins " + "; ".join(f"{d.title} ({d.finding})" for d in won)
    if lost:
        text += ". " + ("; ".join(f"{d.winner} wins {d.title} ({d.finding})" for d in lost))
    return text + "."


def _close_call(leader: str, dims: list[Dimension], against: list[Dimension], c: Constraints) -> str:
    won = "; ".join(f"{d.title} ({d.finding})" for d in dims if d.winner == leader)
    leaning = "; ".join(f"{d.title} leans {d.lean} but is {d.finding}" for d in against)
    return (
        f"Too close to call for {c.goal}, deploying to {c.deploy} on {c.hardware}: {leader} wins {won}; "
        f"{leaning}. Decided that way, it would outweigh {leader}'s lead: rerun to decide it."
    )


def _caveats(run: Run, c: Constraints) -> list[str]:
    out = []
    byo = run.info.get("options", {}).get("byo")
    if byo:
        failed = {r["case"]: r for r in run.stage("parity") if r["status"] == "failed"}
        if "user-vs-twin" in failed:
            out.append(
                f"parity of your model against its twin FAILED ({failed['user-vs-twin']['message']}): the "
                "twins measured here do not compute what your model computes, so their numbers may not be "
                "your model's."
            )
        if "user-pair" in failed:
            out.append(
                f"parity of your own pair FAILED ({failed['user-pair']['message']}): your Keras model does "
                "not compute what your torch model computes; the twins measured here are the torch model's."
            )
        out.append(f"Your own model: {byo['measured']}.")
    env = run.info.get("environment", {})
    if c.hardware == "gpu" and not env.get("gpus"):
        out.append(
            "--hardware gpu, but this run's machine has no GPU: every speed below was measured on the CPU; "
            "re-run on the GPU machine to decide for it."
        )
    if run.info.get("options", {}).get("quick"):
        out.append("--quick run: one epoch and short timing budgets; confirm on a full run before deciding.")
    if run.missing:
        out.append(
            f"the run stopped before stage(s) {', '.join(run.missing)}: those dimensions are not measured."
        )
    if c.deploy in TARGET_NOTES:
        out.append(TARGET_NOTES[c.deploy] + ".")
    busy = noisy_stages(run.info.get("guard"))
    if busy:
        out.append(advice(busy))
    return out


def _side_of(a_name: str, b_name: str, ratio: Ratio, margin: float) -> tuple[str | None, str]:
    """The winning side of time(a)/time(b) (None unless its CI lies wholly outside the margin) and the
    sentence that says so."""
    winner = None
    if ratio.practical(margin) == "win":
        winner = family(b_name) if ratio.low > 1.0 else family(a_name)  # a ratio above 1: a is slower
    return winner, ratio.practical_verdict(a_name, b_name, margin)


def _lean(a_name: str, b_name: str, ratio: Ratio, margin: float) -> str | None:
    """The side an undecided time(a)/time(b) leans to: the faster one, when the point estimate alone
    lies beyond the margin."""
    if ratio.practical(margin) != "undecided":
        return None
    if ratio.ratio > 1.0 + margin:
        return family(b_name)
    if ratio.ratio < 1.0 / (1.0 + margin):
        return family(a_name)
    return None


def _training(run: Run, margin: float) -> Dimension:
    title = "training speed"
    done = {
        r["case"]: r["metrics"]
        for r in run.stage("train")
        if r["status"] == "ok" and len(r["metrics"].get("step_times", [])) > 2
    }
    timing = rounds.timing_of(run.train_timing, done)
    step = rounds.step_medians(done, timing)
    best = {
        side: _best({m: {"step": v} for m, v in step.items()}, side, lambda m: m["step"]) for side in SIDES
    }
    if not all(best.values()):
        return Dimension("training", title, None, "not measured: this run has no training mode of each side")
    t, k = best["PyTorch"], best["TensorFlow"]
    assert t and k
    ratio = rounds.step_ratio(done[t], done[k], timing, t, k)
    winner, sentence = _side_of(t, k, ratio, margin)
    where = "in the timing rounds that followed training" if timing else "in its training run"
    reasons = [
        f"fastest PyTorch mode {t}: {_ms(step[t])}/step {where}".rstrip(),
        f"fastest TensorFlow mode {k}: {_ms(step[k])}/step {where}".rstrip(),
        f"step time: {sentence}",
    ]
    summary = run.case("train", "summary")
    reached = (summary or {}).get("metrics", {}).get("time_to_target_s", {})
    target = (summary or {}).get("metrics", {}).get("target_val_acc")
    if target is not None and reached.get(t) is not None and reached.get(k) is not None:
        regression = wording.regression(run.task)
        goal = f"validation MSE {-target:.3f}" if regression else f"validation accuracy {target:.3f}"
        reasons.append(
            f"time to {goal}: {t} {reached[t]:.2f} s, {k} {reached[k]:.2f} s (one run each, compile included)"
        )
    return Dimension("training", title, winner, sentence, reasons, lean=_lean(t, k, ratio, margin))


def _scale_out(run: Run, margin: float) -> Dimension:
    """torchrun + DDP against the fastest tf.distribute launcher at the largest worker count both ran
    at one global batch (strong scaling), each having passed the gate against its one-worker run."""
    title = "scale-out training"
    done = [
        r
        for r in run.stage("distributed")
        if r["status"] == "ok"
        and r["case"] != "summary"
        and r["settings"].get("scaling") == "strong"
        and r["metrics"].get("matches_single")
        and len(r["metrics"].get("step_times", [])) > 2
    ]
    sides = {
        side: [r for r in done if r["settings"]["api"] == api]
        for side, api in (("PyTorch", "torch.distributed"), ("TensorFlow", "tf.distribute"))
    }
    counts = {r["settings"]["workers"] for r in sides["PyTorch"]} & {
        r["settings"]["workers"] for r in sides["TensorFlow"]
    }
    counts = {n for n in counts if n > 1}
    if not counts:
        return Dimension(
            "scale-out", title, None, "not measured: no multi-worker case of each side passed the gate"
        )
    n = max(counts)
    best = {
        side: min(
            (r for r in cases if r["settings"]["workers"] == n),
            key=lambda r: r["metrics"]["step_s"]["median"],
        )
        for side, cases in sides.items()
    }
    t, k = best["PyTorch"], best["TensorFlow"]
    ratio = rounds.ratio(
        rounds.segments(t["metrics"]["step_times"]), rounds.segments(k["metrics"]["step_times"]), paired=False
    )
    winner = None
    if ratio.practical(margin) == "win":
        winner = "TensorFlow" if ratio.low > 1.0 else "PyTorch"  # a ratio above 1: torch is slower
    sentence = ratio.practical_verdict(t["case"], k["case"], margin)
    summary = run.case("distributed", "summary")
    reasons = [
        f"{r['case']}: {_ms(r['metrics']['step_s']['median'])}/step, "
        f"{r['metrics']['samples_per_s']['median']:,.0f} samples/s"
        for r in (t, k)
    ]
    reasons.append(f"step time at {n} workers: {sentence}")
    if summary and summary["metrics"].get("verdict"):
        reasons.append(summary["metrics"]["verdict"])
    return Dimension("scale-out", title, winner, sentence, reasons)


def _inference(run: Run, c: Constraints, margin: float) -> Dimension:
    title = f"inference for {c.deploy}"
    device = "cuda" if c.hardware == "gpu" and _has_device(run, "cuda") else "cpu"
    done = runnable(run.stage("infer"), device)
    found = contenders(done, c.deploy)
    if found is None:
        return Dimension("inference", title, None, "not measured: no inference case for this target ran ok")
    batch, best = found
    if not all(best.values()):
        missing = [s for s in SIDES if not best[s]]
        return Dimension(
            "inference", title, None, f"not measured: no {' or '.join(missing)} case for this target ran ok"
        )
    t, k = best["PyTorch"], best["TensorFlow"]
    assert t and k
    # Paired: the cases of one round were timed side by side, block by block.
    ratio = rounds.ratio(
        *(rounds.of_batch(done[case]["batches"][str(batch)]) for case in (t, k)), paired=True
    )
    winner, sentence = _side_of(t, k, ratio, margin)
    reasons = [
        f"{device}, batch {batch}: best PyTorch path {t} {_latency(done[t], batch)}",
        f"{device}, batch {batch}: best TensorFlow path {k} {_latency(done[k], batch)}",
        f"latency: {sentence}",
    ]
    if c.deploy in SERVER_TARGETS:
        reasons.append(_exporters(run, done, batch, device, margin))
    return Dimension("inference", title, winner, sentence, reasons, lean=_lean(t, k, ratio, margin))


def _verification(run: Run, artifact: str) -> dict[str, Any]:
    record = run.case("export", artifact)
    return dict(record["metrics"].get("verification", {})) if record else {}


def _exporters(run: Run, done: dict[str, dict[str, Any]], batch: int, device: str, margin: float) -> str:
    """The two exporters' fp32 ONNX graphs in the same ONNX Runtime: a finding about the exporters (and
    whether their graphs even differ), never a framework win."""
    t, k = EXPORTER_CASES
    if not all(case in done and str(batch) in done[case]["batches"] for case in EXPORTER_CASES):
        return "exporter comparison (not a framework win): the two ONNX graphs were not both timed"
    times = [rounds.of_batch(done[case]["batches"][str(batch)]) for case in EXPORTER_CASES]
    sentence = rounds.ratio(times[0], times[1], paired=True).practical_verdict(t, k, margin)
    ops = [_verification(run, case.split("/")[1]).get("onnx_ops") for case in EXPORTER_CASES]
    if ops[0] and ops[1]:
        same = "the same ops" if ops[0] == ops[1] else "different ops"
        counts = f"{sum(ops[0].values())} and {sum(ops[1].values())} nodes"
        graphs = f"; the two graphs have {same} ({counts})"
    else:
        graphs = ""
    return f"exporter comparison (not a framework win), {device} batch {batch}: {sentence}{graphs}"


def _deployment(run: Run, c: Constraints) -> Dimension:
    title = f"deployment path to {c.deploy}"
    exported = {r["case"]: r for r in run.stage("export")}
    if not exported:
        return Dimension("deployment", title, None, "not measured: this run has no export stage")
    ready: dict[str, list[dict[str, Any]]] = {}
    reasons = []
    for side in SIDES:
        path = [exported[a] for a in TARGET_ARTIFACTS[c.deploy][side] if a in exported]
        good = [r for r in path if r["status"] == "ok" and r["metrics"].get("gate") != "fail"]
        ready[side] = good
        if not path:
            reasons.append(
                f"{side}: none of {', '.join(TARGET_ARTIFACTS[c.deploy][side])} was made in this run"
            )
            continue
        parts = [_artifact_line(r) for r in path]
        reasons.append(f"{side}: {len(good)} of {len(path)} artifacts verified: " + "; ".join(parts))
    counts = {side: len(ready[side]) / max(1, len(TARGET_ARTIFACTS[c.deploy][side])) for side in SIDES}
    winner = None
    if counts["PyTorch"] != counts["TensorFlow"]:
        winner = max(counts, key=lambda s: counts[s])
        finding = (
            f"{winner} ships {len(ready[winner])} verified artifact(s) for {c.deploy}, "
            f"the other side {len(ready[_other(winner)])}"
        )
    elif c.deploy in ("mobile", "edge") and all(ready.values()):
        small = {s: min(r["metrics"]["size_bytes"] for r in ready[s]) for s in SIDES}
        lo, hi = sorted(SIDES, key=lambda s: small[s])
        # Sizes are exact, but a few percent is format overhead, not a difference a phone notices.
        if small[hi] > 1.2 * small[lo]:
            winner = lo
            finding = f"both verified; {lo}'s smallest is {_kb(small[lo])} against {_kb(small[hi])}"
        else:
            finding = (
                f"no significant difference: both verified, smallest {_kb(small[lo])} and {_kb(small[hi])}"
            )
    else:
        finding = "no significant difference: both sides' paths verify equally"
    return Dimension("deployment", title, winner, finding, reasons)


def _serving(run: Run, margin: float) -> Dimension:
    """Throughput at the p99 SLO, TF Serving against the best PyTorch-side server. bakeoff's stand-in for
    TF Serving is reported, never counted as TF Serving's own performance."""
    from bakeoff.report import serving

    title = "serving under load"
    d = serving.digest(run)
    if not d or not d["servers"]:
        return Dimension("serving", title, None, "not measured: this run has no serve stage")
    ceiling = d.get("generator_ceiling_rps")
    reasons = [
        f"{r['case']} ({r['implementation'] or 'did not run'}): "
        + (serving.throughput_text(r, ceiling) if r["status"] == "ok" else f"failed: {r['message'][:100]}")
        for r in d["servers"]
    ]
    if ceiling:
        reasons.append(f"load generator ceiling (no-op server): {ceiling:,.0f} req/s")
    best: dict[str, dict[str, Any] | None] = {}
    for side, names in SERVING_SIDES.items():
        ok = [r for r in d["servers"] if r["server"] in names and r["status"] == "ok" and r.get("slo_met")]
        best[side] = max(ok, key=lambda r: r["slo_throughput_rps"] or 0, default=None)
    tf, pt = best["TensorFlow"], best["PyTorch"]
    if tf is not None and serving.stand_in(tf):
        other = f"; best PyTorch-side {pt['case']} {serving.throughput_text(pt, ceiling)}" if pt else ""
        return Dimension(
            "serving",
            title,
            None,
            "not decided: tensorflow_model_server did not run (not installable here); bakeoff's own "
            f"TF Serving API server reached {serving.throughput_text(tf, ceiling)}{other}, and that is "
            "bakeoff's number, not TF Serving's",
            reasons,
        )
    if tf is None or pt is None:
        missing = "TF Serving" if tf is None else "a PyTorch-side server (TorchServe, Triton, Ray Serve)"
        return Dimension(
            "serving", title, None, f"not measured: no {missing} met the SLO in this run", reasons
        )
    a, b = float(tf["slo_throughput_rps"] or 0), float(pt["slo_throughput_rps"] or 0)
    if tf.get("generator_bound") and pt.get("generator_bound"):
        return Dimension(
            "serving", title, None, "no practical difference: both outran the load generator", reasons
        )
    if max(a, b) <= (1 + margin) * min(a, b):
        return Dimension(
            "serving",
            title,
            None,
            f"no practical difference: {a:,.0f} and {b:,.0f} req/s at the SLO",
            reasons,
        )
    winner = "TensorFlow" if a > b else "PyTorch"
    hi, lo = (tf, pt) if a > b else (pt, tf)
    finding = (
        f"{hi['case']} serves {max(a, b) / min(a, b):.1f}x {lo['case']} at the p99 SLO "
        f"({max(a, b):,.0f} against {min(a, b):,.0f} req/s)"
    )
    return Dimension("serving", title, winner, finding, reasons)


def _debuggability(run: Run, c: Constraints, margin: float) -> Dimension:
    """What the debug stage found, in each framework's default mode (eager PyTorch, Keras fit as a
    tf.function): the pdb/print probes that pass there, and how many planted faults the framework's own
    tools find and locate (name the layer or point at the source line). A pythonic team weighs the probes
    more, a structured team the tools. The eager step time (where code is debugged) is shown beside it."""
    title = "debuggability"
    reasons, votes = [], {side: 0.0 for side in SIDES}
    signals = []
    debug = [r for r in run.stage("debug") if r["status"] == "ok"]
    probes = {
        side: [
            r
            for r in debug
            if r["case"].startswith("probe/")
            and r["settings"].get("default")
            and FAMILY_OF[r["settings"]["framework"]] == side
        ]
        for side in SIDES
    }
    if all(probes.values()):
        passed = {side: _probes_passed(probes[side]) for side in SIDES}
        for side in SIDES:
            ok, total, failing = passed[side]
            mode = probes[side][0]["settings"]["mode"]
            reasons.append(
                f"{side} default mode ({mode}): {ok} of {total} debugger probes pass"
                + (f" (fails {', '.join(failing)})" if failing else "")
            )
        if passed["PyTorch"][0] != passed["TensorFlow"][0]:
            best = max(SIDES, key=lambda side: passed[side][0])
            votes[best] += 1.0 if c.team == "pythonic" else 0.5
            signals.append(
                f"{best}'s default mode passes {passed[best][0]} debugger probes against "
                f"{passed[_other(best)][0]}"
            )
    located = {side: _faults_located(debug, side) for side in SIDES}
    if all(total for _, _, total in located.values()):
        for side in SIDES:
            found, pinned, total = located[side]
            reasons.append(
                f"{side} own tools, default mode: found {found} of {total} planted-fault cases, located "
                f"{pinned} (named the layer or pointed at the source line)"
            )
        share = {side: located[side][1] / located[side][2] for side in SIDES}
        if abs(share["PyTorch"] - share["TensorFlow"]) > 0.1:
            best = max(SIDES, key=lambda side: share[side])
            votes[best] += 1.0 if c.team == "structured" else 0.5
            signals.append(
                f"{best}'s tools locate {share[best]:.0%} of planted faults against {share[_other(best)]:.0%}"
            )
    measured = bool(reasons)
    if not measured:
        reasons.append(
            "the debug stage did not run: `bakeoff debug MODEL` or `bakeoff run --stages ...,debug` "
            "measures pdb, print() and each framework's tools on planted faults"
        )
    done = {r["case"]: r["metrics"] for r in run.stage("train") if r["status"] == "ok"}
    if "torch-eager" in done and "keras-eager" in done:
        t, k = done["torch-eager"], done["keras-eager"]
        eager_timing = rounds.timing_of(run.train_timing, ("torch-eager", "keras-eager"))
        ratio = rounds.step_ratio(t, k, eager_timing, "torch-eager", "keras-eager")
        _, sentence = _side_of("torch-eager", "keras-eager", ratio, margin)
        reasons.append(f"eager step time (where code is debugged; shown, not counted): {sentence}")
    if not measured:
        return Dimension("debuggability", title, None, "not measured: the debug stage did not run", reasons)
    winner = None if votes["PyTorch"] == votes["TensorFlow"] else max(votes, key=lambda s: votes[s])
    weighting = f"weighted for a {c.team} team"
    finding = (
        f"{'; '.join(signals)} ({weighting})"
        if winner
        else f"no significant difference ({'; '.join(signals) or 'no signal differs'}, {weighting})"
    )
    return Dimension("debuggability", title, winner, finding, reasons)


FAMILY_OF = {"torch": "PyTorch", "keras": "TensorFlow"}


def _probes_passed(records: list[dict[str, Any]]) -> tuple[int, int, list[str]]:
    checks = {k: bool(v) for r in records for k, v in r["metrics"]["checks"].items()}
    failing = sorted(k for k, v in checks.items() if not v)
    return len(checks) - len(failing), len(checks), failing


def _faults_located(records: list[dict[str, Any]], side: str) -> tuple[int, int, int]:
    """(found, located, cases) of the planted-fault cases in the side's default mode, its own tools only
    (bakeoff's finder left out); a tool that failed before the fault acted found nothing."""
    from bakeoff.stages.debug.shared import DEFAULT_MODES, before_fault

    mine = [
        r
        for r in records
        if "fault" in r["settings"]
        and FAMILY_OF.get(r["settings"].get("framework", "")) == side
        and r["settings"].get("mode") == DEFAULT_MODES[r["settings"]["framework"]]
        and r["settings"].get("tool") != "bakeoff"
    ]
    found = [
        r["metrics"]
        for r in mine
        if r["metrics"]["found"] and not before_fault(r["metrics"], r["settings"]["fault_step"])
    ]
    pinned = [m for m in found if m["names_layer"] or m["points_at_line"]]
    return len(found), len(pinned), len(mine)


def _best(cases: dict[str, dict[str, Any]], side: str, key: Any) -> str | None:
    mine = [case for case in cases if family(case) == side]
    return min(mine, key=lambda case: key(cases[case])) if mine else None


def _has_device(run: Run, device: str) -> bool:
    return any(r["metrics"].get("device") == device for r in run.stage("infer"))


def _artifact_line(r: dict[str, Any]) -> str:
    m = r["metrics"]
    if r["status"] != "ok":
        return f"{r['case']} failed ({r['message'][:80]})"
    v = m.get("verification", {})
    detail = f"{r['case']} {_kb(m.get('size_bytes'))}"
    if m.get("precision", "fp32") == "fp32" and v.get("max_abs_diff") is not None:
        detail += f", max abs diff {v['max_abs_diff']:.1e}"
    elif v.get("accuracy") is not None and v.get("reference_accuracy"):
        detail += f", {v['accuracy'] / v['reference_accuracy']:.2%} of fp32 accuracy"
    if m.get("gate") == "fail":
        detail += " (below the 99% gate)"
    return detail


def _latency(m: dict[str, Any], batch: int) -> str:
    median = m["batches"][str(batch)]["stats"]["median"]
    return f"p50 {_ms(median)}, {batch / median:,.0f} samples/s (n={len(m['batches'][str(batch)]['times'])})"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _kb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1024:,.0f} KB"


def _other(side: str) -> str:
    return SIDES[1 - SIDES.index(side)]
