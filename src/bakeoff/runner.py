"""`bakeoff run`: make (or resume) a run directory, capture the environment, run the stages in order."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff import __version__
from bakeoff.errors import UsageError, check_choices
from bakeoff.measure.env import capture, physical_cores
from bakeoff.measure.guard import Watch, probe, with_probes_after
from bakeoff.results.store import RunStore, make_record, newest
from bakeoff.spec.flops import count_flops, count_params
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.load import from_dict, resolve
from bakeoff.stages.context import RunContext
from bakeoff.stages.registry import STAGES

if TYPE_CHECKING:
    from bakeoff.twins.derive import Derived


@dataclass
class RunOutcome:
    path: Path
    records: list[dict[str, Any]]
    seconds: float
    results: dict[str, Any] = field(default_factory=dict)
    graph: Graph | None = None  # the model the stages ran on (derived, for your own model)

    @property
    def latest(self) -> list[dict[str, Any]]:
        return newest(self.records)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.latest if r["status"] == "failed"]


def check_stages(stages: list[str]) -> list[str]:
    """The stages in the order they run (the registry's), each once; a stage without the stages it
    reads is refused here, before a run directory exists."""
    check_choices("--stages", "stage", stages, STAGES)
    for stage in stages:
        missing = [need for need in STAGES[stage].needs if need not in stages]
        if missing:
            raise UsageError(
                f"--stages: {stage} reads what {', '.join(missing)} makes in the same run; "
                f"add it: --stages {','.join(s for s in STAGES if s in {*stages, *missing})}"
            )
    return [s for s in STAGES if s in stages]


def _no_stage(stage: str) -> None:
    pass


def run_stages(
    model: str,
    out: Path,
    stages: list[str],
    options: dict[str, Any],
    progress: Callable[[str], None],
    on_stage: Callable[[str], None] = _no_stage,
    constraints: dict[str, str] | None = None,
    byo: dict[str, Any] | None = None,
) -> RunOutcome:
    """Runs `stages` on `model` (a zoo name or a spec file), or with `byo` ({torch, keras, input_shapes}:
    the user's own model or pair) on the spec derived from the user's model."""
    stages = check_stages(stages)
    options = {**options, "threads": options.get("threads") or physical_cores()}
    with tempfile.TemporaryDirectory(prefix="bakeoff-derive-") as tmp:
        derived = _derive(byo, Path(tmp), options["threads"], progress) if byo else None
        graph = derived.graph if derived else resolve(model)
        for stage in stages:
            STAGES[stage].check(graph, options)
        store = RunStore.create(out, graph.spec.name)
        progress(f"run directory {store.path}")
        if derived and byo:
            # The run keeps its own copy of the spec and the twin: the pairs it checks point at them.
            derived = derived.moved(store.path / "derived")
            (store.path / "spec.yaml").write_text(derived.spec_path.read_text())
            options["byo"] = _byo_options(byo, derived)
            progress(options["byo"]["measured"])
    store.write_run(
        {
            "bakeoff": __version__,
            "model": graph.spec.name,
            "spec": graph.spec.model_dump(mode="json"),
            "params": count_params(graph),
            "flops_per_sample": count_flops(graph),
            "stages": stages,
            "options": options,
            "environment": capture(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            # The recommendation's inputs, so `bakeoff report` rebuilds the same verdict.
            "constraints": constraints or {},
        }
    )
    return _execute(RunContext(graph, store, options, progress), stages, on_stage)


def _derive(byo: dict[str, Any], folder: Path, threads: int, progress: Callable[[str], None]) -> Derived:
    """The spec of the user's torch model (of the Keras one when only that is given)."""
    from bakeoff.twins.derive import derive

    framework = "torch" if byo.get("torch") else "keras"
    progress(f"deriving a spec from --{framework} {byo[framework]} (a {framework} worker)")
    return derive(byo[framework], framework, [tuple(s) for s in byo["input_shapes"]], folder, threads)


def _byo_options(byo: dict[str, Any], derived: Derived) -> dict[str, Any]:
    """What the parity stage checks besides the twins: the user's model against its generated twin, and
    the user's own pair when both sides were given; and the sentence saying what the stages measure."""
    shapes = [list(s) for s in byo["input_shapes"]]
    twin = derived.pair([tuple(s) for s in shapes])
    pairs = [{"case": "user-vs-twin", "torch": twin.torch, "keras": twin.keras}]
    if byo.get("torch") and byo.get("keras"):
        pairs.append({"case": "user-pair", "torch": byo["torch"], "keras": byo["keras"]})
    measured = (
        f"the stages measure the twins built from the spec derived from --{derived.source} "
        f"{derived.user_ref} ({derived.spec_path}), not your own files directly; parity proves them equal "
        "to your model"
    )
    return {
        **byo,
        "input_shapes": shapes,
        "pairs": pairs,
        "measured": measured,
        "spec": str(derived.spec_path),
    }


def resume(
    run_dir: Path,
    progress: Callable[[str], None],
    on_stage: Callable[[str], None] = _no_stage,
    weighing: dict[str, Any] | None = None,
) -> RunOutcome:
    """Re-runs what did not finish ok in `run_dir`, with the options and spec it was started with.
    `weighing` (constraints, margin) changes only how the verdict weighs what was measured."""
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise UsageError(f"--resume {run_dir}: not a run directory (no run.json)")
    try:
        info = json.loads(info_path.read_text())
        stages, options, spec = info["stages"], info["options"], info["spec"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume {run_dir}: run.json is damaged or from another version ({exc})") from exc
    stages = check_stages(stages)
    graph: Graph = build_graph(from_dict(spec, source=str(info_path)))
    store = RunStore(run_dir)
    done = {(r["stage"], r["case"], r["framework"]) for r in newest(store.records()) if r["status"] == "ok"}
    progress(f"resuming {run_dir}: {len(done)} finished case(s) kept")
    info.setdefault("resumed_at", []).append(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    weighing = dict(weighing or {})
    if "margin" in weighing:
        options["margin"] = weighing.pop("margin")
    info["constraints"] = {**(info.get("constraints") or {}), **weighing}
    store.write_run(info)
    ctx = RunContext(graph, store, options, progress, done=done)
    return _execute(ctx, stages, on_stage)


def _merge_guard(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """A resumed stage keeps the cases measured in the earlier attempt: noisy then is noisy still."""
    merged = {**before, **now}
    for stage, old in before.items():
        if stage in now and old.get("noisy"):
            why = "; ".join(w for w in (f"earlier attempt: {old.get('why')}", now[stage].get("why")) if w)
            merged[stage] = {**now[stage], "noisy": True, "why": why}
    return merged


def _execute(ctx: RunContext, stages: list[str], on_stage: Callable[[str], None]) -> RunOutcome:
    started = time.perf_counter()
    took: dict[str, float] = {}
    guard: dict[str, dict[str, Any]] = {}
    for stage in stages:
        on_stage(stage)
        watch = Watch(probe())
        t0 = time.perf_counter()
        kept = sum(1 for s, _, _ in ctx.done if s == stage)
        if kept:
            ctx.progress(f"{stage}: {kept} case(s) finished in an earlier attempt, kept")
        crashed_before = any(r["case"] == "stage" and r["status"] == "failed" for r in ctx.latest(stage))
        try:
            STAGES[stage].run(ctx)
            if crashed_before:  # a resumed stage that now finished: its old failure no longer stands
                ctx.record(make_record(stage, "stage", "ok", message="finished on resume"))
        except Exception as exc:  # one broken stage is recorded; the stages after it still run
            ctx.record(
                make_record(
                    stage,
                    "stage",
                    "failed",
                    message=f"{type(exc).__name__}: {exc}",
                    seconds=time.perf_counter() - t0,
                )
            )
        took[stage] = time.perf_counter() - t0
        guard[stage] = watch.stop().to_dict()
        if guard[stage]["noisy"]:
            ctx.progress(f"machine: {stage} ran on a busy machine: {guard[stage]['why']}")
    guard = with_probes_after(guard, probe())
    seconds = time.perf_counter() - started
    # A report tells a finished run from one that stopped halfway by the stamp; the stage times let the
    # next run of this model estimate how long it has left.
    finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    # A resumed run's time is every attempt's that got this far, not only the last (often seconds).
    attempts = [*ctx.store.read_run().get("attempt_seconds", []), seconds]
    ctx.store.update_run(
        finished_at=finished_at,
        seconds=sum(attempts),
        attempt_seconds=attempts,
        stage_seconds=took,
        guard=_merge_guard(ctx.store.read_run().get("guard") or {}, guard),
    )
    return RunOutcome(ctx.store.path, ctx.store.records(), seconds, ctx.results, ctx.graph)
