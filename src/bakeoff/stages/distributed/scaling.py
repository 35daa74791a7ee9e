"""Distributed bake-off, parent side: plans the cases (each launcher at 1..N workers, strong and weak
scaling), runs them one after the other, and turns their ranks' results into records; then the
correctness gate and the scaling summary.

Every case starts from the training stage's inputs (`training.prepare`: one data set, one canonical
weight set, one per-epoch order), at one global batch split evenly across workers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data.datasets import Dataset
from bakeoff.data.datasets import load as load_dataset
from bakeoff.errors import UsageError, check_choices
from bakeoff.measure.env import gpus, physical_cores
from bakeoff.measure.stats import summarize
from bakeoff.results.store import make_record
from bakeoff.spec.graph import Graph
from bakeoff.stages.distributed.launch import GroupResult, Nodes, run_group
from bakeoff.stages.distributed.lines import lines_changed
from bakeoff.stages.distributed.shared import LAUNCHERS, RAY_LAUNCHERS, WRAPPERS, check_split
from bakeoff.stages.train.shared import TrainOptions, has_dropout
from bakeoff.stages.train.training import (
    CONVERGENCE_LOSS_RTOL,
    check_options,
    compare_curves,
    fp32_horizon,
    prepare,
)

STAGE = "distributed"
SCALINGS = ("strong", "weak")
# The one-worker run each framework's N-worker runs are held to: one process, one replica.
BASELINE = {"torch": "torchrun", "keras": "mirrored"}


@dataclass(frozen=True)
class DistOptions:
    train: TrainOptions  # batch_size is the global batch of strong scaling (per worker at 1 worker)
    launchers: tuple[str, ...] = ("torchrun", "mwms", "mirrored")
    workers: tuple[int, ...] = (1, 2)
    scaling: tuple[str, ...] = ("strong",)
    nodes: Nodes = field(default_factory=Nodes)
    # The Ray cluster the ray-* launchers join (None: $BAKEOFF_RAY_ADDRESS, else a local one per case).
    ray_address: str | None = None
    collective_timeout: float = 120.0
    # One process per framework with every core as well: what distributing has to beat on this machine
    # (the one-worker baseline has only a worker's threads). Planned when it differs from the baseline.
    all_cores: bool = True

    @property
    def threads(self) -> int:
        """Threads per worker: the same for every launcher, so workers x threads fit the cores."""
        return self.train.threads or max(1, physical_cores() // max(self.workers))


@dataclass(frozen=True)
class Case:
    launcher: str
    workers: int
    scaling: str  # 'strong': the global batch fixed; 'weak': the batch per worker fixed
    global_batch: int
    # Threads of this case's workers; None: the stage's threads per worker. Set only for the one-process
    # reference that uses every core (`all-cores`).
    threads: int | None = None

    @property
    def name(self) -> str:
        return (
            f"{self.launcher}/workers={self.workers}"
            + ("/weak" if self.scaling == "weak" else "")
            + ("/all-cores" if self.threads is not None else "")
        )

    @property
    def framework(self) -> str:
        return LAUNCHERS[self.launcher][0]


def check(graph: Graph, opts: DistOptions) -> None:
    check_choices("--launchers", "launcher", list(opts.launchers), LAUNCHERS)
    check_choices("--scaling", "scaling", list(opts.scaling), SCALINGS)
    if not opts.workers or min(opts.workers) < 1:
        raise UsageError(f"--workers {','.join(map(str, opts.workers))}: each count at least 1 (e.g. 1,2)")
    for wrapper in (w for w in WRAPPERS if w in opts.launchers):
        if importlib.util.find_spec(wrapper) is None:
            raise UsageError(
                f"--launchers {wrapper}: the {wrapper} package is not installed; "
                "pip install 'bakeoff[distributed]' (it keeps the torch you have)"
            )
    _check_ray(opts)
    if has_dropout(graph):
        raise UsageError(
            "the distributed stage needs a model without dropout: each worker draws its own masks, so the "
            "N-worker loss cannot equal the one-worker loss"
        )
    for n in opts.workers:
        check_split(opts.train.batch_size, n)
    cores = physical_cores()
    per_node = max(opts.workers)
    if opts.train.device == "cuda" and 0 < len(gpus()) < per_node:
        raise UsageError(
            f"--workers {per_node} --device cuda: this machine has {len(gpus())} GPU(s); one worker per GPU"
        )
    if per_node * opts.threads > cores:
        raise UsageError(
            f"--workers {per_node} x --threads {opts.threads} = {per_node * opts.threads} threads on "
            f"{cores} cores: workers x threads must not exceed the cores (oversubscribed workers measure "
            "the scheduler)"
        )
    if opts.nodes.hosts and not 0 <= opts.nodes.rank < opts.nodes.count:
        raise UsageError(
            f"--node-rank {opts.nodes.rank}: one of 0..{opts.nodes.count - 1} for {opts.nodes.count} nodes"
        )
    _check_tf_ports(opts)
    check_options(graph, opts.train, load_dataset(graph, opts.train.data, opts.train.seed))


def _check_tf_ports(opts: DistOptions) -> None:
    """Node k's TensorFlow workers listen on its port + i: two nodes on one host must not overlap."""
    if not opts.nodes.hosts or not set(opts.launchers) & {"mwms"}:
        return
    taken: dict[tuple[str, int], str] = {}
    for k, given in enumerate(opts.nodes.hosts):
        host, port = opts.nodes.address(k)
        for i in range(max(opts.workers)):
            if (host, port + i) in taken:
                raise UsageError(
                    f"--nodes: {given} and {taken[host, port + i]} both need {host}:{port + i} (node k's "
                    f"TensorFlow workers listen on its port .. port + {max(opts.workers) - 1}); "
                    "space the ports"
                )
            taken[host, port + i] = given


def _check_ray(opts: DistOptions) -> None:
    from bakeoff import ray_cluster

    wanted = [launcher for launcher in opts.launchers if launcher in RAY_LAUNCHERS]
    if not wanted:
        return
    module = {"ray-torch": "ray.train.torch", "ray-tf": "ray.train.tensorflow"}
    for launcher in wanted:
        reason = ray_cluster.missing(module[launcher], "distributed")
        if reason:
            raise UsageError(f"--launchers {launcher}: {reason}")
    if opts.nodes.hosts:
        raise UsageError(
            f"--launchers {','.join(wanted)} with --nodes: Ray places the workers on its own cluster; "
            "give --ray-address (the cluster's head) instead of --nodes"
        )


def plan(opts: DistOptions) -> list[Case]:
    """Each framework's one-worker baseline first, then every launcher at each larger count."""
    batch = opts.train.batch_size
    frameworks = dict.fromkeys(LAUNCHERS[launcher][0] for launcher in opts.launchers)
    cases = [Case(BASELINE[f], 1, "strong", batch) for f in frameworks] if 1 in opts.workers else []
    if opts.all_cores and opts.train.device == "cpu" and max(opts.workers) > 1 and 1 in opts.workers:
        cores = opts.threads * max(opts.workers)
        cases += [Case(BASELINE[f], 1, "strong", batch, threads=cores) for f in frameworks]
    # A wrapper's overhead against the raw loop in one process, too.
    cases += [Case(w, 1, "strong", batch) for w in WRAPPERS if w in opts.launchers and 1 in opts.workers]
    for n in sorted(w for w in set(opts.workers) if w > 1):
        for launcher in opts.launchers:
            if "strong" in opts.scaling:
                cases.append(Case(launcher, n, "strong", batch))
            if "weak" in opts.scaling:
                cases.append(Case(launcher, n, "weak", batch * n))
    return cases


def run_distributed(
    graph: Graph,
    opts: DistOptions,
    workdir: Path,
    on_record: Callable[[dict[str, Any]], None],
    progress: Callable[[str], None],
    skip: set[str] | None = None,
) -> list[dict[str, Any]]:
    check(graph, opts)
    dataset = load_dataset(graph, opts.train.data, opts.train.seed).head(opts.train.train_samples)
    base = prepare(graph, opts.train, dataset, workdir / "inputs")
    records: list[dict[str, Any]] = []
    for case in plan(opts):
        if case.name in (skip or set()):
            continue
        progress(f"distributed: {case.name} ({LAUNCHERS[case.launcher][2]})")
        train = replace(opts.train, batch_size=case.global_batch)
        request = {
            **base,
            "job": "distributed",
            "case": case.name,
            "launcher": case.launcher,
            "workers": case.workers * opts.nodes.count,
            "threads": case.threads or opts.threads,
            "collective_timeout": opts.collective_timeout,
            "ray_address": ray_address(opts),
            # The torch baseline trains once more, untimed, from weights one ulp off: how many steps fp32
            # rounding alone leaves the loss in place, the steps the gate compares (training.fp32_horizon).
            "ulp_probe": case.name == "torchrun/workers=1",
            "options": {**base["options"], "batch_size": case.global_batch},
        }
        result = run_group(
            case.launcher,
            request,
            workdir / case.name.replace("/", "_"),
            workers=case.workers,
            threads=case.threads or opts.threads,
            nodes=opts.nodes,
            timeout=opts.train.case_timeout,
        )
        record = case_record(case, result, opts, train, dataset, records)
        progress(f"distributed: {case.name} {record['status']} {record['message']}".rstrip())
        records.append(record)
        on_record(record)
    return records


def ray_address(opts: DistOptions) -> str | None:
    from bakeoff import ray_cluster

    return ray_cluster.address_of(opts.ray_address)


def _ray_where(opts: DistOptions) -> str:
    from bakeoff import ray_cluster

    address = ray_address(opts)
    return ray_cluster.where(address) + ("" if address else ", started for the case and stopped after it")


def _settings(case: Case, opts: DistOptions, train: TrainOptions, data: Dataset) -> dict[str, Any]:
    total = case.workers * opts.nodes.count
    threads = case.threads or opts.threads
    process_threads = threads * case.workers if case.launcher == "mirrored" else threads
    ray = case.launcher in RAY_LAUNCHERS
    return {
        **train.settings(data),
        "api": LAUNCHERS[case.launcher][1],
        "launcher": case.launcher,
        "how": LAUNCHERS[case.launcher][2],
        "workers": total,
        "nodes": list(opts.nodes.hosts) or ["127.0.0.1"],
        "node_rank": opts.nodes.rank,
        "scaling": case.scaling,
        "global_batch": case.global_batch,
        "per_worker_batch": case.global_batch // total,
        "threads_per_worker": threads,
        "layout": f"{case.workers} worker(s) x {threads} thread(s) on {physical_cores()} cores"
        + (
            f" (one process, {process_threads} threads)"
            if case.launcher == "mirrored"
            else (", a Ray actor each" if ray else ", a process each")
        ),
        **({"cluster": _ray_where(opts)} if ray else {}),
        "split": "rank r trains on the r-th equal slice of every global batch",
        "averaging": "mean of the workers' gradients (DDP averages; Keras scales each replica's loss by "
        "1/replicas and sums)",
        "allreduce": "all-reduce of one buffer the size of all gradients, timed alone after training",
        "rss": "peak RSS of each launched process tree, summed over the trees",
        "baseline": f"{BASELINE[case.framework]}/workers=1",
    }


def case_record(
    case: Case,
    result: GroupResult,
    opts: DistOptions,
    train: TrainOptions,
    data: Dataset,
    earlier: list[dict[str, Any]],
) -> dict[str, Any]:
    settings = _settings(case, opts, train, data)
    framework = case.framework
    if not result.ok:
        return make_record(
            STAGE,
            case.name,
            "failed",
            framework=framework,
            message=result.why(),
            settings=settings,
            seconds=result.seconds,
        )
    ranks = [result.ranks[k] for k in sorted(result.ranks)]
    first = ranks[0]
    settings["keras_fixes"] = first.meta.get("keras_fixes", [])
    settings["addresses"] = first.meta.get("addresses", [])
    settings["backend"] = first.meta.get("backend", "collective ops" if framework == "keras" else "")
    times = np.max(np.stack([r.arrays["step_times"] for r in ranks]), axis=0)  # the slowest rank's step
    steady = times[1:] if len(times) > 1 else times
    step = summarize(steady)
    rate = summarize(case.global_batch / steady)
    allreduce = first.arrays["allreduce_times"]
    metrics: dict[str, Any] = {
        "step_times": times.tolist(),
        "first_step_s": float(times[0]),
        "step_s": step.to_dict(),
        "samples_per_s": rate.to_dict(),
        "step_losses": first.arrays["step_losses"].tolist(),
        **(
            {"ulp_step_losses": first.arrays["ulp_step_losses"].tolist()}
            if "ulp_step_losses" in first.arrays
            else {}
        ),
        "launch_to_first_step_s": max(r.meta["first_step_end_wall"] for r in ranks) - result.launched_wall,
        "allreduce_s": float(np.median(allreduce)) if allreduce.size else None,
        "allreduce_share": float(np.median(allreduce)) / step.median
        if allreduce.size and case.workers > 1
        else None,
        "rss_peak_bytes": result.rss_peak_bytes,
        "lines_changed": lines_changed(case.launcher),
        "lines_changed_note": "minimal one-process script against its distributed version (examples/); "
        + ("plus bakeoff's Keras 3 workarounds" if settings["keras_fixes"] else "no workaround needed"),
        "val_acc": first.meta.get("val_acc"),
        "wall_s": result.seconds,
    }
    if "split_matches" in first.meta:
        metrics["split_matches"] = all(r.meta["split_matches"] for r in ranks)
    status, message = "ok", f"{rate.median:,.0f} samples/s at {case.workers} worker(s)"
    baseline = _baseline(case, earlier)
    if case.scaling == "strong":
        if case.workers == 1 and case.launcher == BASELINE[framework] and case.threads is None:
            metrics["matches_single"] = True
        elif baseline is not None:
            gate = compare_curves(metrics, baseline["metrics"], _horizon(earlier))
            metrics["vs_single"] = gate
            metrics["matches_single"] = bool(gate["ok"])
            if not gate["ok"]:
                status, message = "failed", f"the loss differs from the one-worker run: {gate['why']}"
    if metrics.get("split_matches") is False:
        status, message = "failed", "a worker did not get the slice of the global batch torch's rank gets"
    return make_record(
        STAGE,
        case.name,
        status,
        framework=framework,
        message=message,
        metrics=metrics,
        settings=settings,
        seconds=result.seconds,
    )


def _horizon(records: list[dict[str, Any]] | dict[str, dict[str, Any]]) -> int | None:
    """The steps loss curves are compared over: the torch baseline's fp32 horizon (None: every step)."""
    found = [r for r in (records.values() if isinstance(records, dict) else records)]
    torch = [r for r in found if r["case"] == "torchrun/workers=1" and r["status"] == "ok"]
    return fp32_horizon(torch[-1]["metrics"]) if torch else None


def _baseline(case: Case, earlier: list[dict[str, Any]]) -> dict[str, Any] | None:
    name = f"{BASELINE[case.framework]}/workers=1"
    found = [r for r in earlier if r["case"] == name and r["status"] == "ok"]
    return found[-1] if found else None


# ---------------------------------------------------------------- the summary


def summary_record(records: list[dict[str, Any]], cores: int) -> dict[str, Any] | None:
    """Scaling table and efficiencies per launcher, torch against Keras at each worker count, and
    whether distributing paid on this machine."""
    done = {
        r["case"]: r
        for r in records
        if r["stage"] == STAGE and r["case"] != "summary" and r["status"] == "ok"
    }
    if not done:
        return None
    table = []
    for name, r in done.items():
        s, m = r["settings"], r["metrics"]
        single = done.get(s["baseline"])
        n = s["workers"]
        row = {
            "case": name,
            "launcher": s["launcher"],
            "workers": n,
            "scaling": s["scaling"],
            "global_batch": s["global_batch"],
            "step_s": m["step_s"]["median"],
            "samples_per_s": m["samples_per_s"]["median"],
            "launch_to_first_step_s": m["launch_to_first_step_s"],
            "allreduce_s": m["allreduce_s"],
            "rss_peak_bytes": m["rss_peak_bytes"],
            "efficiency": None,
            "speedup": None,
        }
        if single is not None:
            base = single["metrics"]
            # Strong: n workers on the same global batch should be n x as fast (samples/s). Weak: n
            # workers on n x the batch should take the one-worker step time.
            row["speedup"] = m["samples_per_s"]["median"] / base["samples_per_s"]["median"]
            row["efficiency"] = (
                row["speedup"] / n
                if s["scaling"] == "strong"
                else (base["step_s"]["median"] / m["step_s"]["median"])
            )
        table.append(row)
    for row in table:
        raw = next(
            (
                r
                for r in table
                if r["launcher"] == "torchrun"
                and r["workers"] == row["workers"]
                and r["scaling"] == row["scaling"]
            ),
            None,
        )
        # A wrapper's cost over the raw DDP loop at the same workers (step time ratio, medians).
        row["vs_raw_loop"] = row["step_s"] / raw["step_s"] if raw and row["launcher"] in WRAPPERS else None
    cross = _cross_gate(done)
    verdict, pays = _pays(done, table, cores)
    failures = [f"{c['pair']}: {c['why']}" for c in cross if not c["ok"]]
    metrics = {"table": table, "cross": cross, "pays": pays, "verdict": verdict, "cores": cores}
    return make_record(
        STAGE,
        "summary",
        "failed" if failures else "ok",
        message="; ".join(failures) if failures else verdict,
        metrics=metrics,
    )


def _pays(done: dict[str, dict[str, Any]], table: list[dict[str, Any]], cores: int) -> tuple[str, bool]:
    """Whether the fastest multi-worker case at one global batch (strong scaling: weak scaling changes
    the batch, and a larger batch alone is faster per sample on a CPU) beat the fastest one-process run
    of its framework, with every core or a worker's share of them."""
    for row in table:
        framework = done[row["case"]]["framework"]
        singles = [
            r["samples_per_s"]
            for r in table
            if r["workers"] == 1
            and done[r["case"]]["framework"] == framework
            and r["scaling"] == "strong"
            and r["launcher"] == BASELINE[framework]
        ]
        row["vs_best_one_process"] = row["samples_per_s"] / max(singles) if singles else None
    multi = [r for r in table if r["workers"] > 1 and r["scaling"] == "strong" and r["vs_best_one_process"]]
    best = max(multi, key=lambda r: r["vs_best_one_process"], default=None)
    if best is None:
        return "no multi-worker case at one global batch finished", False
    ratio = best["vs_best_one_process"]
    if ratio > 1.0:
        return (
            f"distributing paid on this {cores}-core machine: {best['case']} ran {ratio:.2f}x the samples/s "
            "of the fastest one-process run of its framework",
            True,
        )
    return (
        f"distributing cannot pay on this {cores}-core machine: the best multi-worker case ({best['case']}) "
        f"ran {ratio:.2f}x the samples/s of the fastest one-process run of its framework (the workers "
        "only share the cores)",
        False,
    )


# The torch launchers whose N-worker curve is held to every Keras launcher's (the wrappers are held to
# the raw loop's instead).
CROSS_TORCH = ("torchrun", "ray-torch")


def _cross_gate(done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """torch's N-worker loss curves (torchrun, Ray's TorchTrainer) against each Keras launcher's
    (MultiWorkerMirroredStrategy, MirroredStrategy, Ray's TensorflowTrainer) at the same N and global
    batch."""
    out = []
    for name, r in done.items():
        s = r["settings"]
        if s["launcher"] not in CROSS_TORCH or s["scaling"] != "strong":
            continue
        for other in done.values():
            o = other["settings"]
            if other["framework"] == "keras" and o["workers"] == s["workers"] and o["scaling"] == "strong":
                gate = compare_curves(r["metrics"], other["metrics"], _horizon(done))
                out.append({"pair": f"{name} vs {other['case']}", "workers": s["workers"], **gate})
    return out


__all__ = ["CONVERGENCE_LOSS_RTOL", "DistOptions", "plan", "run_distributed", "summary_record"]
