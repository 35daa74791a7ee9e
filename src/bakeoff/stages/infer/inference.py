"""Inference bake-off: every (artifact x runtime) case at several batch sizes, in the runtime's own
worker. Per case: cold start (load, first inference), latency median/p90/p99 per batch size (batch 1 is
MLPerf's SingleStream), throughput (the largest batch is its Offline), accuracy on the validation set
and peak RSS (sampled from outside the worker).

Every case is measured in rounds, and within a round in short blocks that take turns between the
workers (measure.conduct): each round starts one worker per framework, loads every case once, then for
each batch size times each case in a block, one case of each worker in turn (torch, keras, native, ...),
then again in the reverse turn (A B B A within the round). The two sides of a comparison are timed
a fraction of a second apart, so a change of the machine's speed (seconds long on a shared VM) falls on
both. Rounds alternate the worker order too, and by default every round after the first starts fresh
workers (the first runs in those the export stage started), so what differs between two processes
(memory placement, a thread pool's start, the clock) shows up between rounds, where the hierarchical
bootstrap of `measure.rounds` sees it, instead of between runs, where only a second run would."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.measure import DEFAULT_MARGIN
from bakeoff.measure.conduct import serve_commands, take_turns
from bakeoff.measure.isolation import WorkerResult
from bakeoff.measure.timer import measure
from bakeoff.results.store import make_record
from bakeoff.runtimes import DEFAULT_RUNTIMES, RUNTIMES, WORKERS, Runtime, bind
from bakeoff.stages.export.artifacts import ARTIFACTS
from bakeoff.stages.export.shared import ExportJob
from bakeoff.stages.export.verify import check_outputs, judge, load_artifact

DEFAULT_BATCH_SIZES = (1, 8, 64, 256)
# Each round times every case twice at the smallest and the largest batch size: the cases in turn, then
# in the reverse turn (A B B A within the round, so a linear drift falls on both sides of every pair
# alike), each block with half the round's budget; sizes between get one such block a round.
BLOCKS = 2


@dataclass(frozen=True)
class InferOptions:
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    min_time: float = 0.05  # per batch size and round (split over its blocks): at least this long ...
    max_time: float = 0.25  # ... and at most this long, once warm
    # Per round: five rounds give enough calls for a p99, few enough that the raw times stay small in
    # records.jsonl and the bootstrap of every ratio takes a fraction of a second.
    max_runs: int = 250
    rounds: int = 5
    # Fresh worker processes every `restart_every` rounds. A fresh set costs the workers' start: 10-20 s
    # here (TensorFlow's import alone 4-10 s). Every other round kept the default run near 150 s on a
    # slow stretch of this machine, against 161-191 s, but its bootstrap over rounds counts two rounds of
    # one process as two draws. --quick keeps its workers.
    restart_workers: bool = True
    restart_every: int = 1
    # Rounds more for the cases a verdict compares whose comparison the rounds above left undecided
    # (its CI straddles the margin), at the smallest and largest batch only: a worker's speed differs
    # from the next one's by up to 1.5x here (LiteRT at batch 256: 413-684 us), so five processes
    # leave a 15-20% difference undecided about half the time. About 1.3 s a round for four cases.
    decide_rounds: int = 12
    case_timeout: float = 600.0

    def fresh(self, index: int) -> bool:
        """Whether round `index` (from 0) starts fresh worker processes. The first runs in the workers
        the earlier stages started (export's verification loaded these artifacts in them): a process of
        its own all the same, and a fresh set more would cost 10-20 s."""
        return (
            index > 0 and self.restart_workers and self.restart_every > 0 and index % self.restart_every == 0
        )

    def extra_rounds(self) -> int:
        """The rounds that decide (`decide_rounds`): only after more than one round, which a bootstrap
        over rounds needs to say whether a comparison is decided."""
        return self.decide_rounds if self.rounds > 1 else 0

    def restarts(self) -> str:
        fresh = [i + 1 for i in range(self.rounds) if self.fresh(i)]
        first = "round 1 in the workers the earlier stages started"
        if not fresh:
            return "the same workers in every round, those the earlier stages started where they did"
        forked = ", forked from a template process per framework that imported it once"
        if len(fresh) == self.rounds - 1:
            return f"fresh workers each round after the first ({first}{forked})"
        return (
            f"fresh workers at rounds {', '.join(map(str, fresh))} ({first}; the rounds between share "
            f"theirs{forked})"
        )

    def settings(self, threads: int, gpu: bool) -> dict[str, Any]:
        return {
            **asdict(self),
            "threads": threads,
            "precision": "as exported (fp32 unless the artifact says otherwise)",
            "host_device_copies": "included for every runtime: each call takes host numpy inputs and "
            "returns a host numpy output" + ("" if gpu else " (CPU only here: no copies to make)"),
            "inputs": "validation samples, repeated to fill the batch",
            "rounds": f"{self.rounds} rounds; in each, {BLOCKS} timing blocks of each case at the "
            "smallest and the largest batch size (one at sizes between), the cases of all workers "
            "taking turns block by block (A B B A), worker order alternating between rounds; "
            + self.restarts()
            + (
                f"; then {self.decide_rounds} more rounds, in fresh workers, of the cases a verdict "
                "compares where the rounds above left their comparison undecided (CI across the margin), "
                "at the smallest and largest batch only (a record's decide_rounds says how many it took)"
                if self.extra_rounds()
                else ""
            )
            + "; times, round_sizes (block_sizes within) hold every call of every round; ratio CIs: "
            "bootstrap over rounds, then calls",
            "cold_start": "load = reading the artifact into a ready session in a worker that already "
            "imported and started its framework; first inference = the first batch-1 call (compilation "
            "included)",
            "rss": "peak RSS of the worker while the case loads, makes its first call and checks its "
            "accuracy, and its RSS before (the cases of one framework share a worker and stay loaded for "
            "the round)",
        }


def case_name(runtime: str, artifact: str) -> str:
    return f"{runtime}/{artifact}"


def cases_for(runtime: Runtime, exported: list[str]) -> list[str]:
    """The artifacts a runtime runs: those of its formats that exported and verified ok."""
    return [
        case_name(runtime.name, a)
        for a in exported
        if ARTIFACTS[a].format in runtime.formats and (ARTIFACTS[a].fp32 or not runtime.fp32_only)
    ]


# ---------------------------------------------------------------- worker side


def _batch(xs: list[np.ndarray], size: int) -> list[np.ndarray]:
    reps = -(-size // len(xs[0]))
    return [np.ascontiguousarray(np.concatenate([x] * reps)[:size]) for x in xs]


@dataclass
class _Loaded:
    predict: Any
    xs: list[np.ndarray]
    call: Any = None  # the bound call of the batch size being timed
    size: int = 0


class _Cases:
    """Worker side of a conducted infer job: loads each case once per round, then times it one block
    at a time as the parent asks."""

    def __init__(self, job: ExportJob, request: dict[str, Any]) -> None:
        self.job = job
        self.first_round = request.get("round", 0) == 0
        self.loaded: dict[str, _Loaded] = {}

    def load(self, command: dict[str, Any]) -> dict[str, Any]:
        runtime, artifact = command["case"].split("/", 1)
        art = ARTIFACTS[artifact]
        started = time.perf_counter()
        predict = load_artifact(self.job, art, runtime)
        load_s = time.perf_counter() - started
        xs = self.job.inputs("val", art)
        t0 = time.perf_counter()
        predict(_batch(xs, 1))
        first_s = time.perf_counter() - t0
        # Accuracy does not change between rounds: checked once.
        quality = check_outputs(predict, art, self.job) if self.first_round else None
        self.loaded[command["case"]] = _Loaded(predict, xs)
        return {"load_s": load_s, "first_inference_s": first_s, "quality": quality}

    def measure(self, command: dict[str, Any]) -> dict[str, Any]:
        case, size = self.loaded[command["case"]], int(command["size"])
        bind_s = 0.0
        if case.size != size:
            feed = _batch(case.xs, size)
            t0 = time.perf_counter()
            case.call, case.size = bind(case.predict, feed), size
            bind_s = time.perf_counter() - t0
        m = measure(
            case.call,
            min_time=command["min_time"],
            max_time=command["max_time"],
            max_runs=command["max_runs"],
        )
        return {**m.to_dict(), "bind_s": bind_s}


def prewarm(worker: str, threads: int) -> None:
    """Pays each worker's one-time start-up (torch._dynamo's import, TensorFlow's runtime, ONNX Runtime's
    environment) before any case, so no case's cold start is charged for it."""
    import importlib

    if worker == "native":
        for module in ("onnxruntime", "ai_edge_litert.interpreter"):
            importlib.import_module(module)
        return
    from bakeoff.frameworks import package

    importlib.import_module(f"bakeoff.frameworks.{package(worker)}.parity").configure(threads)


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    job = ExportJob.from_request(request)
    prewarm(request["framework"], job.threads)
    cases = _Cases(job, request)
    with _scope(request["framework"]):
        serve_commands({"load": cases.load, "measure": cases.measure})
    return {}, {}


def _scope(worker: str) -> contextlib.AbstractContextManager[Any]:
    """The torch worker times its cases inside inference mode, held for the whole job as a plain loop
    holds it, instead of entering it in every call (see runtimes.torch_eager.wrap)."""
    if worker == "torch":
        import torch

        return torch.inference_mode()
    return contextlib.nullcontext()


# ---------------------------------------------------------------- parent side


def merge_rounds(results: list[WorkerResult], total: int) -> WorkerResult:
    """One case's rounds as one result: every call's time in `times`, `round_sizes` to split them, the
    cold start and accuracy of the first round (each later round's cold start kept beside it), the peak
    RSS of all rounds. A round that failed fails the case, saying which of the `total`."""
    for index, result in enumerate(results):
        if not result.ok:
            where = f" (round {index + 1} of {total})" if total > 1 else ""
            return WorkerResult(
                result.framework, False, result.seconds, error=result.error + where, kind=result.kind
            )
    from bakeoff.measure.stats import summarize

    first = results[0]
    metas = [r.meta for r in results]
    batches: dict[str, Any] = {}
    for size, entry in first.meta["batches"].items():
        rounds = [m["batches"][size] for m in metas if size in m["batches"]]  # deciding rounds: the ends
        times = [t for r in rounds for t in r["times"]]
        stats = summarize(times)
        batches[size] = {
            **entry,
            "stats": stats.to_dict(),
            "times": times,
            "round_sizes": [len(r["times"]) for r in rounds],
            "round_medians": [r["stats"]["median"] for r in rounds],
            "warmup_times": [t for r in rounds for t in r["warmup_times"]],
            "stopped": [r["stopped"] for r in rounds],
            "block_sizes": [r["block_sizes"] for r in rounds],
            "total_seconds": sum(r["total_seconds"] for r in rounds),
            "samples_per_s": int(size) / stats.median,
        }
    meta = {
        **first.meta,
        "batches": batches,
        "rounds": len(results),
        "cold_starts": [{"load_s": m["load_s"], "first_inference_s": m["first_inference_s"]} for m in metas],
    }
    peaks = [int((m.get("resources") or {}).get("rss_peak_bytes") or 0) for m in metas]
    if first.meta.get("resources"):
        meta["resources"] = {**first.meta["resources"], "rss_peak_bytes": max(peaks)}
    return WorkerResult(first.framework, True, sum(r.seconds for r in results), meta=meta)


def infer_record(case: str, result: WorkerResult, settings: dict[str, Any]) -> dict[str, Any]:
    runtime, artifact = case.split("/", 1)
    framework = RUNTIMES[runtime].worker
    if not result.ok:
        return make_record(
            "infer", case, "failed", framework=framework, message=result.error, settings=settings
        )
    meta = result.meta
    art = ARTIFACTS[artifact]
    status, gate, verdict = judge(art, meta["quality"])
    b1 = meta["batches"].get("1")
    big = meta["batches"][max(meta["batches"], key=int)]
    message = (
        f"p50 {1e3 * b1['stats']['median']:.3f} ms at batch 1, " if b1 else ""
    ) + f"{big['samples_per_s']:,.0f} samples/s at batch {max(meta['batches'], key=int)}"
    if status != "ok" or gate == "fail":
        message = f"{verdict}; {message}"
    metrics = {
        **meta,
        "runtime": runtime,
        "artifact": artifact,
        "precision": art.precision,
        "gate": gate,
        "device": "cuda" if RUNTIMES[runtime].gpu else "cpu",
    }
    return make_record(
        "infer", case, status, framework=framework, message=message, metrics=metrics, settings=settings
    )


def summary_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per device and batch size, the fastest case by median latency and every other case's ratio to it
    (bootstrap over the rounds, paired since the cases ran side by side, then over calls), so 'no
    significant difference' is said where it holds. An artifact flagged by the accuracy gate is
    compared, but never named fastest."""
    from bakeoff.measure import rounds

    done = [r for r in records if r["status"] == "ok" and "batches" in r["metrics"]]
    if not done:
        return None
    by_device: dict[str, dict[str, Any]] = {}
    for device in sorted({r["metrics"].get("device", "cpu") for r in done}):
        mine = [r for r in done if r["metrics"].get("device", "cpu") == device]
        for size in sorted({int(b) for r in mine for b in r["metrics"]["batches"]}):
            have = [r for r in mine if str(size) in r["metrics"]["batches"]]
            batch = {r["case"]: r["metrics"]["batches"][str(size)] for r in have}
            eligible = [r["case"] for r in have if r["metrics"].get("gate") != "fail"] or list(batch)
            fastest = min(eligible, key=lambda c: float(np.median(batch[c]["times"])))
            by_device.setdefault(device, {})[str(size)] = {
                "fastest": fastest,
                "vs_fastest": {
                    c: rounds.ratio(
                        rounds.of_batch(b), rounds.of_batch(batch[fastest]), paired=True
                    ).to_dict()
                    for c, b in batch.items()
                    if c != fastest
                },
            }
    headline = "; ".join(
        f"{device} batch {size}: {info['fastest']}"
        for device, sizes in by_device.items()
        for size, info in sizes.items()
        if size in (min(sizes, key=int), max(sizes, key=int))
    )
    return make_record(
        "infer", "summary", "ok", message=f"fastest: {headline}", metrics={"by_device": by_device}
    )


def turns(cases: list[str], forward: bool) -> list[str]:
    """The cases' order in a round (conduct.take_turns), the reverse worker order when not `forward`."""
    return take_turns(
        cases, lambda c: RUNTIMES[c.split("/", 1)[0]].worker, WORKERS if forward else WORKERS[::-1]
    )


@dataclass
class _Round:
    """One round's results on the parent side, case by case."""

    failed: dict[str, WorkerResult] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocks: dict[str, dict[int, list[dict[str, Any]]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def fail(self, case: str, result: WorkerResult, what: str) -> None:
        self.failed[case] = WorkerResult(
            result.framework, False, result.seconds, error=f"{what}: {result.error}", kind=result.kind
        )

    def live(self, cases: list[str]) -> list[str]:
        return [c for c in cases if c not in self.failed]

    def result(self, case: str, framework: str) -> WorkerResult:
        if case in self.failed:
            return self.failed[case]
        batches = {str(size): _join(blocks) for size, blocks in self.blocks[case].items()}
        return WorkerResult(framework, True, self.seconds[case], meta={**self.meta[case], "batches": batches})


def _join(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """One round's blocks of one batch size as one entry; the first call (plus binding) is the first
    block's."""
    from bakeoff.measure.stats import summarize

    times = [t for b in blocks for t in b["times"]]
    first = blocks[0]
    return {
        "stats": summarize(times).to_dict(),
        "times": times,
        "warmup_times": [t for b in blocks for t in b["warmup_times"]],
        "warmup_runs": sum(b["warmup_runs"] for b in blocks),
        "block_sizes": [len(b["times"]) for b in blocks],
        "stopped": [b["stopped"] for b in blocks],
        "total_seconds": sum(b["total_seconds"] for b in blocks),
        "first_call": first["first_call"],
        # Binding re-plans LiteRT's graph for a new batch size, work other runtimes do in their first
        # call (a retrace, a recompile): it is charged to the first call alike.
        "first_call_s": None if first["first_call"] is None else first["first_call"] + first["bind_s"],
    }


def conduct_round(
    request: dict[str, Any], cases: list[str], options: InferOptions, workdir: Path
) -> dict[str, WorkerResult]:
    """One round: every case's worker started together, each case loaded (its cold start and, from
    outside, its worker's memory), then timed block by block in turns. A case whose command fails
    fails alone; a worker that dies or times out takes the case it was running, and a fresh one loads
    that worker's other cases again (their first load's cold start is kept) and goes on."""
    from bakeoff.measure.conduct import Conductor, Lost
    from bakeoff.measure.isolation import _rss
    from bakeoff.measure.sampler import ResourceSampler

    worker_of = {c: RUNTIMES[c.split("/", 1)[0]].worker for c in cases}
    got = _Round()
    block = {
        "min_time": options.min_time / BLOCKS,
        "max_time": options.max_time / BLOCKS,
        "max_runs": max(1, options.max_runs // BLOCKS),
    }
    with Conductor(request, workdir) as conductor:

        def start(frameworks: list[str]) -> None:
            for framework, result in conductor.start(frameworks).items():
                for case in got.live([c for c in cases if worker_of[c] == framework]):
                    got.fail(case, result, "its worker did not start")

        def ask(case: str, command: dict[str, Any], what: str) -> dict[str, Any] | None:
            framework = worker_of[case]
            if framework not in conductor.jobs:  # it could not start again: its cases have failed
                return None
            t0 = time.perf_counter()
            try:
                reply = conductor.ask(framework, {**command, "case": case}, options.case_timeout, key=case)
            except Lost as lost:
                got.fail(case, lost.result, what)
                reload(framework)
                return None
            finally:
                got.seconds[case] = got.seconds.get(case, 0.0) + time.perf_counter() - t0
            if not reply["ok"]:
                got.fail(case, WorkerResult(framework, False, 0.0, error=reply["error"], kind="case"), what)
                return None
            return dict(reply["meta"])

        def load(case: str) -> None:
            if worker_of[case] not in conductor.jobs:
                return
            pid = conductor.jobs[worker_of[case]].pid
            before = _rss(pid)
            with ResourceSampler(pid) as sampler:
                meta = ask(case, {"op": "load"}, "load")
            if meta is not None and case not in got.meta:
                got.meta[case] = {**meta, "resources": {**sampler.usage.to_dict(), "rss_start_bytes": before}}

        def reload(framework: str) -> None:
            start([framework])
            for case in [c for c in cases if worker_of[c] == framework and c in got.meta]:
                if case not in got.failed:
                    load(case)

        start(list(dict.fromkeys(worker_of[c] for c in cases)))
        for case in cases:
            if case not in got.failed and case not in got.meta:
                load(case)
        ends = (min(options.batch_sizes), max(options.batch_sizes))
        for size in options.batch_sizes:
            # The verdict reads batch 1 and the largest batch; sizes between draw the latency curve and
            # take one block a round (the turn still alternates between rounds): 9 s of a default run.
            for turn in range(BLOCKS if size in ends else 1):
                for case in got.live(cases if turn % 2 == 0 else cases[::-1]):
                    meta = ask(case, {"op": "measure", "size": size, **block}, f"batch {size}")
                    if meta is not None:
                        got.blocks.setdefault(case, {}).setdefault(size, []).append(meta)
    return {case: got.result(case, worker_of[case]) for case in cases}


def run_inference(
    request: dict[str, Any],
    cases: list[str],
    options: InferOptions,
    settings: dict[str, Any],
    workdir: Path,
    on_record: Any,
    progress: Any = lambda _message: None,
    margin: float = DEFAULT_MARGIN,
) -> None:
    """Runs the cases in rounds (see the module docstring), then more rounds of the cases a verdict
    compares where their comparison is not decided (`undecided`); each case's record is made when its
    last round is done, or when it fails."""
    from bakeoff.measure.isolation import POOL

    request = {**request, "job": "infer"}
    with _templates(cases, options, progress):
        results: dict[str, list[WorkerResult]] = {case: [] for case in cases}

        def round_of(index: int, live: list[str], opts: InferOptions) -> dict[str, WorkerResult]:
            if opts.fresh(index):
                # Fresh processes (forked from the zygotes): what differs between two shows between rounds.
                POOL.close(keep_templates=True)
            order = turns(live, forward=index % 2 == 0)
            return conduct_round({**request, "round": index}, order, opts, workdir / f"round-{index}")

        for index in range(options.rounds):
            live = [c for c in cases if all(r.ok for r in results[c])]
            if not live:
                return
            if options.rounds > 1:
                progress(f"infer: round {index + 1} of {options.rounds}, {len(live)} case(s)")
            got = round_of(index, live, options)
            for case in live:
                results[case].append(got[case])
                if not got[case].ok:
                    on_record(infer_record(case, merge_rounds(results[case], options.rounds), settings))
        done = {
            c: infer_record(c, merge_rounds(results[c], options.rounds), settings)
            for c in cases
            if results[c] and results[c][-1].ok
        }
        deciding = undecided(list(done.values()), margin) if options.extra_rounds() else []
        for case, record in done.items():
            if case not in deciding:
                on_record(record)
        if not deciding:
            return
        ends = replace(options, batch_sizes=(min(options.batch_sizes), max(options.batch_sizes)))
        progress(
            f"infer: not decided yet: {', '.join(deciding)}; {options.extra_rounds()} more round(s) of those "
            "cases at the smallest and largest batch"
        )
        lost: dict[str, str] = {}
        for index in range(options.rounds, options.rounds + options.extra_rounds()):
            live = [c for c in deciding if c not in lost]
            if not live:
                break
            got = round_of(index, live, ends)
            for case in live:
                if got[case].ok:
                    results[case].append(got[case])
                else:  # the rounds it has stand; it takes no more
                    lost[case] = f"round {index + 1}: {got[case].error}"
        for case in deciding:
            result = merge_rounds(results[case], len(results[case]))
            result.meta["decide_rounds"] = len(results[case]) - options.rounds
            if case in lost:
                result.meta["decide_error"] = lost[case]
            on_record(infer_record(case, result, settings))


@contextlib.contextmanager
def _templates(cases: list[str], options: InferOptions, progress: Any) -> Iterator[None]:
    """Zygotes for the workers of `cases` while the rounds run, when any round starts fresh workers."""
    from bakeoff.measure.isolation import POOL

    if any(options.fresh(i) for i in range(options.rounds + options.extra_rounds())):
        progress("infer: starting a template process per framework to fork fresh workers from")
        POOL.templates(preload(cases))
    try:
        yield
    finally:
        POOL.drop_templates()


def preload(cases: list[str]) -> dict[str, list[str]]:
    """What a zygote of each worker imports (measure.zygote): what an infer job imports before its
    first case, and every runtime module its cases load."""
    from bakeoff.frameworks import package

    modules: dict[str, list[str]] = {}
    for case in cases:
        runtime = RUNTIMES[case.split("/", 1)[0]]
        if runtime.worker not in modules:
            modules[runtime.worker] = [__name__] + (
                [] if runtime.worker == "native" else [f"bakeoff.frameworks.{package(runtime.worker)}.parity"]
            )
        name = f"bakeoff.runtimes.{runtime.module}"
        if name not in modules[runtime.worker]:
            modules[runtime.worker].append(name)
    return modules


def undecided(records: list[dict[str, Any]], margin: float) -> list[str]:
    """The cases of every comparison a verdict's inference dimension makes (each deployment target, on
    each device: report.targets.contenders) whose ratio is not decided: its CI straddles the margin."""
    from bakeoff.measure import rounds
    from bakeoff.report.targets import TARGET_RUNTIMES, contenders, runnable

    found: list[str] = []
    for device in sorted({r["metrics"].get("device", "cpu") for r in records if r["status"] == "ok"}):
        done = runnable(records, device)
        for deploy in TARGET_RUNTIMES:
            pair = contenders(done, deploy)
            if pair is None or not all(pair[1].values()):
                continue
            batch, best = pair
            t, k = str(best["PyTorch"]), str(best["TensorFlow"])
            times = [rounds.of_batch(done[c]["batches"][str(batch)]) for c in (t, k)]
            if rounds.ratio(times[0], times[1], paired=True).practical(margin) == "undecided":
                found += [c for c in (t, k) if c not in found]
    return found
