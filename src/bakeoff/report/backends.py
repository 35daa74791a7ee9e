"""What a Keras team gives up, or gains, by running its Keras model on PyTorch or JAX instead of
TensorFlow: parity (backends stage), loss curves and step time (train stage) and inference latency
(infer stage) of each backend against Keras on TensorFlow, from the run's records.

Speed comparisons are bootstrap ratios of medians with their 95% CI, judged against the practical margin
as everywhere else: Keras on TensorFlow is better only when the whole interval says so. The finding
informs the verdict but does not vote in the PyTorch-or-TensorFlow score: both are Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bakeoff.frameworks import BACKEND_NAMES, KERAS_BACKENDS
from bakeoff.measure import rounds
from bakeoff.results.run import Run
from bakeoff.stages.train.shared import MODES

TF_KERAS_MODES = ("keras-eager", "keras-graph", "keras-xla")
KERAS_TWIN = "keras-twin"


@dataclass
class BackendFinding:
    worker: str  # 'keras-torch' or 'keras-jax'
    losses: list[str] = field(default_factory=list)  # where Keras on TensorFlow is better
    gains: list[str] = field(default_factory=list)  # where this backend is better
    reasons: list[str] = field(default_factory=list)  # every number behind it

    @property
    def name(self) -> str:
        return BACKEND_NAMES[self.worker]

    def sentence(self) -> str:
        if not self.losses and not self.gains and not self.reasons:
            return f"{self.name}: not measured"
        lost = f"loses {'; '.join(self.losses)}" if self.losses else "loses nothing measured"
        gained = f"; gains {'; '.join(self.gains)}" if self.gains else ""
        return f"{self.name} {lost}{gained}"


def findings(run: Run, margin: float, busy: frozenset[str] = frozenset()) -> list[BackendFinding]:
    """One finding per backend the run measured (any backends, train or infer record of it). A speed
    measured while the machine was busy (`busy`: the stages the guard flagged) is quoted, never counted
    as a loss or a gain."""
    present = {r["framework"] for stage in ("backends", "train", "infer") for r in run.stage(stage)}
    out = []
    for worker in ("keras-torch", "keras-jax"):
        if worker not in present:
            continue
        finding = BackendFinding(worker)
        _parity(run, finding)
        _training(run, finding, margin, "train" in busy)
        _inference(run, finding, margin, "infer" in busy)
        out.append(finding)
    return out


def _parity(run: Run, f: BackendFinding) -> None:
    record = run.case("backends", KERAS_BACKENDS[f.worker])
    if record is None:
        return
    m = record["metrics"]
    if record["status"] != "ok":
        f.losses.append(f"parity ({record['message'][:120]})")
        return
    vs_tf = m.get("max_abs_diff_vs_tensorflow")
    f.reasons.append(
        f"{f.name} parity: outputs {m['max_abs_diff']:.1e} from the PyTorch twin"
        + (f", {vs_tf:.1e} from Keras on TensorFlow" if vs_tf is not None else "")
        + f", gradients {m.get('grad_max_abs_diff', 0.0):.1e} (atol {record['settings'].get('atol')})"
    )


def _judge(f: BackendFinding, ratio: Any, margin: float, what: str, busy: bool) -> None:
    """A decided speed difference is a loss (Keras on TensorFlow faster) or a gain; on a busy machine
    it is neither."""
    if ratio.practical(margin) != "win":
        return
    if busy:
        f.reasons.append(f"{what}: not decided, the machine was busy")
        return
    (f.losses if ratio.low > 1.0 else f.gains).append(what)


def _training(run: Run, f: BackendFinding, margin: float, busy: bool = False) -> None:
    done = {
        r["case"]: r["metrics"]
        for r in run.stage("train")
        if r["status"] == "ok" and len(r["metrics"].get("step_times", [])) > 2
    }
    failed = [r for r in run.stage("train") if r["framework"] == f.worker and r["status"] != "ok"]
    for r in failed:
        f.losses.append(f"{r['case']} failed ({r['message'][:100]})")
    summary = run.case("train", "summary")
    curves = (summary or {}).get("metrics", {}).get("mode_convergence", {})
    mine = [m for m in done if MODES.get(m, ("",))[0] == f.worker]
    for mode in mine:
        c = curves.get(mode)
        if c is None:
            continue
        if not c["ok"]:
            f.losses.append(f"{mode}'s loss curve ({c['why']})")
        elif c.get("not_compared"):
            f.reasons.append(f"{mode} loss curve not compared: {c['not_compared']}")
        else:
            f.reasons.append(
                f"{mode} loss curve against {c['against']}: max relative difference "
                f"{c['max_rel_loss_diff']:.1e} over {c['steps']} steps (allowed {c['loss_rtol']:g})"
            )
    tf_modes = [m for m in TF_KERAS_MODES if m in done]
    if not mine or not tf_modes:
        return
    timing = rounds.timing_of(run.train_timing, done)
    step = rounds.step_medians(done, timing)
    pairs = [(min(mine, key=step.__getitem__), "fastest")]
    eager = next((m for m in mine if m.endswith("-eager")), None)
    if eager and "keras-eager" in done:
        pairs.append((eager, "eager"))
    for mode, kind in pairs:
        tf = min(tf_modes, key=step.__getitem__) if kind == "fastest" else "keras-eager"
        ratio = rounds.step_ratio(done[mode], done[tf], timing, mode, tf)
        sentence = ratio.practical_verdict(mode, tf, margin)
        f.reasons.append(
            f"training step ({kind}): {mode} {step[mode] * 1e3:.3g} ms, {tf} {step[tf] * 1e3:.3g} ms; "
            f"{sentence}"
        )
        _judge(f, ratio, margin, f"training speed ({kind} mode: {sentence})", busy)
        if kind == "fastest" and done[mode].get("first_step_s") is not None:
            f.reasons.append(
                f"first step (compile or trace) {mode} {done[mode]['first_step_s']:.2f} s, "
                f"{tf} {done[tf]['first_step_s']:.2f} s"
            )


def _inference(run: Run, f: BackendFinding, margin: float, busy: bool = False) -> None:
    runtime = f.worker  # the runtime of Keras on a backend is named as its worker
    cases = {r["case"]: r for r in run.stage("infer") if r["case"].endswith(f"/{KERAS_TWIN}")}
    mine, tf = cases.get(f"{runtime}/{KERAS_TWIN}"), cases.get(f"keras-tf/{KERAS_TWIN}")
    if mine is None:
        return
    if mine["status"] != "ok":
        f.losses.append(f"inference ({mine['message'][:100]})")
        return
    if tf is None or tf["status"] != "ok" or "batches" not in tf["metrics"]:
        return
    a, b = mine["metrics"]["batches"], tf["metrics"]["batches"]
    sizes = sorted({int(s) for s in a} & {int(s) for s in b})
    for size in dict.fromkeys(sizes[:1] + sizes[-1:]):  # batch 1 and the largest, as the verdict does
        ratio = rounds.ratio(rounds.of_batch(a[str(size)]), rounds.of_batch(b[str(size)]), paired=True)
        name = f"{runtime}/{KERAS_TWIN}"
        sentence = ratio.practical_verdict(runtime, "keras-tf", margin)
        f.reasons.append(
            f"inference at batch {size}: {name} p50 {a[str(size)]['stats']['median'] * 1e3:.3g} ms, "
            f"keras-tf p50 {b[str(size)]['stats']['median'] * 1e3:.3g} ms; {sentence}"
        )
        _judge(f, ratio, margin, f"inference latency at batch {size} ({sentence})", busy)
