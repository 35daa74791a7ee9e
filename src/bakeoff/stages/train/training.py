"""Training bake-off, parent side: every training mode of both frameworks on the same data, weights
and order.

`run_training` prepares one data set, one canonical weight set and one per-epoch order, then runs each
framework's modes in that framework's own worker, one mode after the other, and turns what comes back
into records. What the workers read (`Setup`, modes, Adam settings) lives in `shared.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data.datasets import Dataset, epoch_orders
from bakeoff.data.datasets import load as load_dataset
from bakeoff.errors import UsageError, check_choices
from bakeoff.measure.env import gpus
from bakeoff.measure.isolation import WorkerResult, run_cases
from bakeoff.npz import save_arrays
from bakeoff.results.store import make_record
from bakeoff.spec.flops import count_flops
from bakeoff.spec.graph import Graph
from bakeoff.stages.train.shared import (
    COMPILE_MODES,
    FP32_DRIFT_RTOL,
    MODES,
    PEAK_CASE,
    PEAK_SIZE,
    TIMING_BLOCKS,
    TIMING_MAX_STEPS,
    TIMING_MIN_STEPS,
    TrainOptions,
)
from bakeoff.twins.canonical import canonical_weights, save_weights

# mode -> (framework, how it runs)


def check_modes(modes: list[str]) -> list[str]:
    return check_choices("--modes", "mode", modes, MODES)


def check_options(graph: Graph, options: TrainOptions, dataset: Dataset) -> None:
    if options.compile_mode not in COMPILE_MODES:
        raise UsageError(f"--compile-mode: '{options.compile_mode}' is not one of {', '.join(COMPILE_MODES)}")
    if options.device not in ("cpu", "cuda"):
        raise UsageError(f"--device: '{options.device}' is not one of cpu, cuda")
    if options.device == "cuda" and not gpus():
        raise UsageError(
            "--device cuda: this machine has no CUDA device (nvidia-smi finds none); use --device cpu"
        )
    if options.batch_size > dataset.n_train:
        raise UsageError(
            f"--batch-size {options.batch_size} is larger than the {dataset.n_train} training samples of "
            f"'{dataset.name}'"
        )
    if options.epochs < 1:
        raise UsageError(f"--epochs {options.epochs}: at least 1")
    if not (math.isfinite(options.lr) and options.lr > 0):
        raise UsageError(f"--lr {options.lr}: a learning rate is a finite number above 0 (e.g. 1e-3)")
    if options.batch_size < 1:
        raise UsageError(f"--batch-size {options.batch_size}: at least 1")
    if options.train_samples is not None and options.train_samples < options.batch_size:
        raise UsageError(
            f"train_samples {options.train_samples} is smaller than one batch ({options.batch_size})"
        )


# ---------------------------------------------------------------- parent side


def prepare(graph: Graph, options: TrainOptions, dataset: Dataset, workdir: Path) -> dict[str, Any]:
    """Writes the shared inputs once; returns the request every framework's worker starts from."""
    workdir.mkdir(parents=True, exist_ok=True)
    orders = epoch_orders(dataset.n_train, options.epochs, options.seed)
    save_arrays(workdir / "data.npz", {**dataset.arrays(), "orders": orders})
    save_weights(canonical_weights(graph, options.seed), workdir / "weights.npz")
    return {
        "job": "train",
        "spec": graph.spec.model_dump(mode="json"),
        "data": str(workdir / "data.npz"),
        "weights": str(workdir / "weights.npz"),
        "options": asdict(options),
        "peak_size": PEAK_SIZE,
    }


def run_training(
    graph: Graph,
    modes: list[str],
    options: TrainOptions,
    workdir: Path,
    on_record: Callable[[dict[str, Any]], None],
    progress: Callable[[str], None],
    skip: set[str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Runs `modes` (less those in `skip`, already finished), calling `on_record` as each case ends, then
    times every finished mode's step again in rounds (`time_in_rounds`; None: fewer than two modes)."""
    check_modes(modes)
    dataset = load_dataset(graph, options.data, options.seed)
    check_options(graph, options, dataset)
    dataset = dataset.head(options.train_samples)
    # The task says what the validation score is (accuracy, or -MSE), so every reader can name it.
    settings = {**options.settings(dataset), "task": graph.spec.task.type}
    request = prepare(graph, options, dataset, workdir)
    records: list[dict[str, Any]] = []
    peaks: dict[str, float] = {}
    train_flops = 3 * count_flops(graph)  # forward + backward ~ 3x the forward pass

    def on_case(case: str, result: WorkerResult) -> None:
        framework = result.framework
        if case == PEAK_CASE:
            record = peak_record(framework, result)
            if result.ok:
                peaks[framework] = result.meta["gflops"]
        else:
            record = mode_record(case, result, settings, train_flops, peaks)
            progress(f"train: {case} {record['status']} {record['message']}".rstrip())
        records.append(record)
        on_record(record)

    todo = {
        framework: [m for m in modes if MODES[m][0] == framework and m not in (skip or set())]
        for framework in dict.fromkeys(worker for worker, _ in MODES.values())
    }
    todo = {framework: cases for framework, cases in todo.items() if cases}
    # Every framework's matmul probe before any mode, so each mode's utilization is measured against
    # the machine's ceiling (the best probe), known before its record is written.
    for framework in todo:
        progress(f"train: {framework} matmul peak")
        run_cases(
            {**request, "framework": framework},
            [PEAK_CASE],
            workdir,
            case_timeout=options.case_timeout,
            on_case=on_case,
        )
    for framework, cases in todo.items():
        progress(f"train: {framework} worker for {', '.join(cases)}")
        run_cases(
            {**request, "framework": framework},
            cases,
            workdir,
            case_timeout=options.case_timeout,
            on_case=on_case,
        )
    ok = {r["case"] for r in records if r["status"] == "ok"} | (skip or set())
    finished = [m for m in modes if m in ok]
    if len(finished) < 2 or options.timing_rounds < 1:
        return records, None
    try:
        return records, time_in_rounds(request, finished, options, workdir, progress)
    except Exception as exc:  # the modes are trained and recorded: the rounds are an extra
        progress(f"train: timing rounds failed, modes compared on their training runs: {exc}")
        return records, None


def time_in_rounds(
    request: dict[str, Any],
    modes: list[str],
    options: TrainOptions,
    workdir: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Every mode's training step timed again, in rounds of short blocks that take turns between the
    workers (one mode of each framework in turn, then the reverse turn; rounds alternate the order),
    so the sides of a comparison are timed a fraction of a second apart instead of a whole training
    run apart. Each worker reuses the model it trained (no second compile) or builds the twin again
    when it did not train it (a resumed run). A mode whose command fails is left out, saying why."""
    from bakeoff.measure.conduct import Conductor, Lost, take_turns

    frameworks = list(dict.fromkeys(MODES[m][0] for m in modes))
    order = take_turns(modes, lambda m: MODES[m][0], frameworks)
    failed: dict[str, str] = {}
    blocks: dict[str, list[list[list[float]]]] = {m: [] for m in order}
    block = {
        "min_time": options.timing_block_s,
        "min_steps": TIMING_MIN_STEPS,
        "max_steps": TIMING_MAX_STEPS,
    }
    progress(f"train: timing {', '.join(order)} in {options.timing_rounds} rounds, taking turns")
    with Conductor({**request, "timing": True}, workdir / "timing") as conductor:
        for framework, result in conductor.start(frameworks).items():
            failed.update(dict.fromkeys((m for m in order if MODES[m][0] == framework), result.error))

        def ask(mode: str, command: dict[str, Any]) -> dict[str, Any] | None:
            framework = MODES[mode][0]
            if mode in failed:
                return None
            if framework not in conductor.jobs:
                failed[mode] = "its worker left"
                return None
            try:
                reply = conductor.ask(framework, {**command, "mode": mode}, options.case_timeout, key=mode)
            except Lost as lost:
                failed.update(
                    dict.fromkeys((m for m in order if MODES[m][0] == framework), lost.result.error)
                )
                return None
            if not reply["ok"]:
                failed[mode] = reply["error"]
                return None
            return dict(reply["meta"])

        kept = [m for m in order if (ask(m, {"op": "load"}) or {}).get("kept")]
        for index in range(options.timing_rounds):
            turn = order if index % 2 == 0 else order[::-1]
            for mode in turn:
                blocks[mode].append([])
            for pass_ in range(TIMING_BLOCKS):
                for mode in turn if pass_ % 2 == 0 else turn[::-1]:
                    meta = ask(mode, {"op": "steps", **block})
                    if meta is not None:
                        blocks[mode][index].append(meta["times"])
    timed = {}
    for mode in order:
        if mode in failed:
            continue
        rounds_ = [[t for b in r for t in b] for r in blocks[mode]]
        times = [t for r in rounds_ for t in r]
        timed[mode] = {
            "times": times,
            "round_sizes": [len(r) for r in rounds_],
            "block_sizes": [[len(b) for b in r] for r in blocks[mode]],
            "median": float(np.median(times)),
        }
    # `kept`: the modes timed on the model their training left in the worker (no second compile).
    return {"modes": timed, "failed": failed, "rounds": options.timing_rounds, "kept": kept}


def peak_record(framework: str, result: WorkerResult) -> dict[str, Any]:
    if not result.ok:
        return make_record("train", PEAK_CASE, "failed", framework=framework, message=result.error)
    return make_record(
        "train",
        PEAK_CASE,
        "ok",
        framework=framework,
        message=f"{framework} fp32 matmul peak {result.meta['gflops']:.1f} GFLOP/s",
        metrics=result.meta,
        settings={"matmul": f"{PEAK_SIZE}x{PEAK_SIZE} fp32"},
    )


def mode_record(
    mode: str, result: WorkerResult, settings: dict[str, Any], train_flops: int, peaks: dict[str, float]
) -> dict[str, Any]:
    framework = MODES[mode][0]
    if not result.ok:
        return make_record(
            "train", mode, "failed", framework=framework, message=result.error, settings=settings
        )
    from bakeoff.measure.stats import summarize

    times = result.arrays["step_times"]
    batch = settings["batch_size"]
    steady = summarize(times[1:] if len(times) > 1 else times)  # step 1 holds compile/trace time
    throughput = summarize(batch / times[1:] if len(times) > 1 else batch / times)
    gflops = train_flops * throughput.median / 1e9
    # The machine's ceiling is the best probe any framework reached: one ceiling for every mode, so
    # "% of peak" compares modes; each framework's own probe (which BLAS it runs) is kept beside it.
    peak = max(peaks.values(), default=0.0)
    probes: dict[str, Any] = {
        key: result.arrays[key].tolist() for key in ("ulp_step_losses", DROPOUT_OFF) if key in result.arrays
    }
    metrics = {
        **result.meta,
        "first_step_s": float(times[0]),
        "step_s": steady.to_dict(),
        "samples_per_s": throughput.to_dict(),
        "step_times": times.tolist(),
        "step_losses": result.arrays["step_losses"].tolist(),
        **probes,
        "val_acc_per_epoch": result.arrays["val_acc"].tolist(),
        "train_seconds_per_epoch": result.arrays["epoch_seconds"].tolist(),
        "gflops": gflops,
        "peak_gflops": peak or None,
        "framework_peak_gflops": peaks.get(framework),
        "utilization": gflops / peak if peak else None,
    }
    losses = result.arrays["step_losses"]
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        # A diverged run's speed and accuracy are not results: argmax of NaN outputs can even score well.
        message = f"the loss became {losses[bad[0]]} at step {bad[0] + 1} of {len(losses)}"
        return make_record(
            "train", mode, "failed", framework=framework, message=message, metrics=metrics, settings=settings
        )
    score = result.meta["val_acc"]  # accuracy, or -MSE for regression
    shown = f"val acc {score:.3f}" if settings.get("task") != "regression" else f"val MSE {-score:.4g}"
    message = f"{throughput.median:,.0f} samples/s, {shown}" if math.isfinite(score) else ""
    return make_record(
        "train", mode, "ok", framework=framework, message=message, metrics=metrics, settings=settings
    )


def summary_record(
    records: list[dict[str, Any]],
    target_fraction: float = 0.95,
    *,
    dropout: bool = False,
    task: str = "classification",
    timing: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Time to accuracy against one target for every mode, the convergence check between eager
    PyTorch and eager Keras (same weights, data, order and optimizer), the timing rounds (`timing`) and
    each mode's step against the fastest's."""
    from bakeoff.measure import rounds

    done = {
        r["case"]: r for r in records if r["stage"] == "train" and r["case"] in MODES and r["status"] == "ok"
    }
    if not done:
        return None
    # A model that diverged has NaN accuracies, stored as null: they reach no target.
    accs = [a for r in done.values() for a in r["metrics"]["val_acc_per_epoch"] if a is not None]
    if not accs:
        return make_record("train", "summary", "failed", message="no mode produced a finite validation score")
    best = max(accs)
    target = target_fraction * best if best > 0 else best / target_fraction
    reached = {mode: time_to(r["metrics"], target) for mode, r in done.items()}
    metrics: dict[str, Any] = {"target_val_acc": target, "best_val_acc": best, "time_to_target_s": reached}
    if "torch-eager" in done and "keras-eager" in done:
        metrics["convergence"] = convergence(
            done["torch-eager"]["metrics"], done["keras-eager"]["metrics"], dropout=dropout, task=task
        )
    metrics["mode_convergence"] = mode_convergence({m: r["metrics"] for m, r in done.items()}, dropout)
    if timing is not None:
        metrics["timing"] = timing
    steps = {mode: r["metrics"] for mode, r in done.items()}
    medians = rounds.step_medians(steps, timing)
    fastest = min(done, key=medians.__getitem__)
    metrics["fastest"] = fastest
    metrics["vs_fastest"] = {
        mode: rounds.step_ratio(steps[mode], steps[fastest], timing, mode, fastest).to_dict()
        for mode in done
        if mode != fastest
    }
    status = "ok"
    goal = (
        f"target val acc {target:.3f} (95% of best {best:.3f})"
        if task == "classification"
        else f"target val MSE {-target:.4g} (best {-best:.4g} / 0.95)"
    )
    message = f"fastest step: {fastest}; {goal}"
    conv = metrics.get("convergence")
    failures = [f"eager torch and eager Keras diverge: {conv['why']}"] if conv and not conv["ok"] else []
    failures += [
        f"{mode} and {c['against']} diverge: {c['why']}"
        for mode, c in metrics["mode_convergence"].items()
        if not c["ok"]
    ]
    if failures:
        status, message = "failed", "; ".join(failures)
    return make_record("train", "summary", status, message=message, metrics=metrics)


def time_to(metrics: dict[str, Any], target: float) -> float | None:
    elapsed = 0.0
    for acc, seconds in zip(metrics["val_acc_per_epoch"], metrics["train_seconds_per_epoch"], strict=True):
        elapsed += seconds
        if acc is not None and acc >= target:
            return elapsed
    return None


# Loss curves that should be the same computation (eager torch and eager Keras: same weights, data, order,
# loss and Adam rule; each other mode and its framework's eager) are compared at every logged step for as
# long as fp32 rounding alone cannot move them: the fp32 horizon, measured in each run by the torch
# worker's drift probe (FP32_DRIFT_RTOL in shared.py). Measured on a 2-core CPU, 3 epochs (186 steps):
# simplenet's eager torch and eager Keras agree to 1.1e-5-2.0e-5 (relative; 5.4e-6-7.2e-6 absolute) over
# the whole run for seeds 0-4, its other modes with their eager to 1.1e-5, and a one-ulp nudge of its
# weights never moves it past 1e-5: the horizon is the whole run. Stock torch Adam (the other rule) drifts
# past 1e-4 from step 8 and to 8e-3. lenet (seed 0) amplifies rounding: the one-ulp nudge alone moves it
# 1.7e-4 by step 10, 2e-2 by step 50 and 0.12 by the end, as far as eager Keras moves from eager torch
# (1.7e-4, 2e-2, 0.32), so it is compared up to its horizon (5 steps) and then by final accuracy only;
# with seeds 1 and 2 its horizon is 181 and 153 steps, over which the eager curves agree to 1.6e-5, 1.3e-5.
CONVERGENCE_LOSS_RTOL = 1e-4
CONVERGENCE_ACC_POINTS = 1.0
DROPOUT_OFF = "dropout_off_step_losses"
# (mode, the eager run of its framework it is held to)
# Keras on PyTorch and on JAX are held to Keras on TensorFlow's eager run: the same Keras code, weights,
# data and optimizer, so their curves must agree as each framework's compiled modes agree with its eager.
MODE_PAIRS = (
    ("torch-compile", "torch-eager"),
    ("keras-graph", "keras-eager"),
    ("keras-xla", "keras-eager"),
    ("keras-torch-eager", "keras-eager"),
    ("keras-torch-compile", "keras-eager"),
    ("keras-jax-eager", "keras-eager"),
    ("keras-jax-jit", "keras-eager"),
)


def fp32_horizon(torch_eager: dict[str, Any]) -> int | None:
    """How many steps a one-ulp nudge of the starting weights leaves eager torch's loss within
    FP32_DRIFT_RTOL: the steps loss curves can be compared over. None: the probe did not run (a run
    without it, or from before it) or never moved that far, so the whole run counts."""
    ulp = torch_eager.get("ulp_step_losses")
    if ulp is None:
        return None
    ref = np.array(torch_eager["step_losses"][: len(ulp)])
    drift = np.abs(np.array(ulp) - ref) / np.maximum(np.abs(ref), 1e-12)
    over = np.flatnonzero(~(drift <= FP32_DRIFT_RTOL))
    return int(over[0]) if over.size else None


def compare_curves(
    a_m: dict[str, Any], b_m: dict[str, Any], horizon: int | None, dropout_why: str | None = None
) -> dict[str, Any]:
    """Relative loss difference of two runs at every step up to `horizon` (None: every step), against
    CONVERGENCE_LOSS_RTOL; a failure names the first step beyond it. With dropout (`dropout_why` says
    why its curves differ) nothing is compared; `not_compared` says why when nothing is."""
    a, b = np.array(a_m["step_losses"], np.float64), np.array(b_m["step_losses"], np.float64)
    total = min(len(a), len(b))
    dropout = dropout_why is not None
    n = 0 if dropout else total if horizon is None else min(horizon, total)
    not_compared = dropout_why or (
        "no training step recorded a loss"
        if not total
        else "a one-ulp nudge of the starting weights moves the first loss already"
        if not n
        else None
    )
    rel_all = np.abs(a[:total] - b[:total]) / np.maximum(np.abs(b[:total]), 1e-12)
    rel, diff = rel_all[:n], np.abs(a[:n] - b[:n])
    over = np.flatnonzero(~(rel <= CONVERGENCE_LOSS_RTOL))
    out: dict[str, Any] = {
        "steps": n,
        "not_compared": not_compared,
        "run_steps": total,
        "fp32_horizon": horizon,
        "loss_rtol": CONVERGENCE_LOSS_RTOL,
        "max_rel_loss_diff": float(rel.max()) if n else float("nan"),
        "max_abs_loss_diff": float(diff.max()) if n else float("nan"),
        "run_max_rel_loss_diff": float(rel_all.max()) if total and not dropout else float("nan"),
        "first_divergent_step": int(over[0]) + 1 if over.size else None,
        "ok": not over.size,
        "why": "",
    }
    if over.size:
        k = int(over[0])
        out["why"] = (
            f"the loss at step {k + 1} differs by {rel[k]:.2e} (relative: {a[k]:.6g} against {b[k]:.6g}; "
            f"allowed {CONVERGENCE_LOSS_RTOL:g} at each of the {n} steps compared)"
        )
    return out


def mode_convergence(done: dict[str, dict[str, Any]], dropout: bool = False) -> dict[str, dict[str, Any]]:
    """Each other mode's loss curve against its framework's eager run (the same computation, compiled),
    up to the fp32 horizon; `done` maps finished modes to their metrics."""
    horizon = fp32_horizon(done["torch-eager"]) if "torch-eager" in done else None
    why = "the model has dropout, and a compiled run draws its own random masks" if dropout else None
    return {
        mode: {"against": eager, **compare_curves(done[mode], done[eager], horizon, why)}
        for mode, eager in MODE_PAIRS
        if mode in done and eager in done
    }


def convergence(
    torch_m: dict[str, Any], keras_m: dict[str, Any], *, dropout: bool = False, task: str = "classification"
) -> dict[str, Any]:
    """Eager loss curves agree at every step up to the fp32 horizon (relative difference; the whole run
    when fp32 rounding alone cannot move them) and final validation accuracies within one point: same
    weights, data, order, loss and Adam rule in both. With dropout the curves are not compared (its
    random draws differ between frameworks) and `not_compared` says so; for regression 'points' are
    percent of the validation MSE."""
    dropout_why = "the model has dropout, and each framework draws its own random masks" if dropout else None
    off = DROPOUT_OFF in torch_m and DROPOUT_OFF in keras_m
    if dropout and off:
        # The dropout-off runs hold the curves instead, up to the horizon of torch's ulp probe of its own.
        t_off = {"step_losses": torch_m[DROPOUT_OFF], "ulp_step_losses": torch_m.get("ulp_step_losses")}
        k_off = {"step_losses": keras_m[DROPOUT_OFF]}
        curves = {**compare_curves(t_off, k_off, fp32_horizon(t_off)), "dropout_off": True}
    else:
        curves = compare_curves(torch_m, keras_m, fp32_horizon(torch_m), dropout_why)
    t_acc, k_acc = torch_m["val_acc"], keras_m["val_acc"]
    scale = 1.0 if task == "classification" or k_acc is None else max(abs(k_acc), 1e-12)
    acc_gap = 100 * abs(t_acc - k_acc) / scale if t_acc is not None and k_acc is not None else float("nan")
    why = [curves["why"]] if curves["why"] else []
    # With dropout, a short run's final scores differ by the masks' luck (several points after one quick
    # epoch on MNIST, while the dropout-off curves agree): shown, held only when no curve was compared.
    if not acc_gap <= CONVERGENCE_ACC_POINTS and not (dropout and off):
        why.append(
            f"final validation accuracy differs by {acc_gap:.2f} points (allowed {CONVERGENCE_ACC_POINTS:g})"
            if task == "classification"
            else f"final validation MSE differs by {acc_gap:.2f}% (allowed {CONVERGENCE_ACC_POINTS:g}%)"
        )
    return {**curves, "val_acc_gap_points": acc_gap, "ok": not why, "why": "; ".join(why)}
