"""Commands that measure, each making a run directory: `run` (every stage, then the report) and the
commands for one stage: `train`, `pipeline`, `infer`, plus `export` and `convert`, which also lay out
or convert the exported model.

Each command turns its flags into the run's options (each stage's `options_for` in
`bakeoff.stages.<stage>.stage` says what its flags and --quick mean) and hands them to `bakeoff.runner`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from bakeoff.cli.options import (
    ALL_ARTIFACTS,
    ALL_MODES,
    ALL_RUNTIMES,
    DEFAULT_BATCHES,
    MODEL_HELP,
    Artifacts,
    Atol,
    Backends,
    Batch,
    BatchSize,
    BatchSizes,
    CompileMode,
    Config,
    Data,
    Deploy,
    Device,
    Duration,
    Epochs,
    FitEpochs,
    Goal,
    GradAtol,
    Hardware,
    InputShape,
    JsonFlag,
    KerasRef,
    Lr,
    Margin,
    Model,
    Modes,
    Opset,
    Out,
    RayAddress,
    Runtimes,
    Seed,
    Servers,
    SloMs,
    Team,
    TfServingBin,
    Threads,
    TorchRef,
    all_or,
    constraint_flags,
    given_flag,
    parse_batch_sizes,
    split,
)
from bakeoff.cli.output import console, print_json, progress, quiet
from bakeoff.errors import UsageError
from bakeoff.measure import DEFAULT_MARGIN
from bakeoff.run_options import DEFAULT_LAUNCHERS

# (out, model, quick, stages): what the time estimate of the live display needs.
Plan = tuple[Path, str, bool, list[str]]


# The options a run is measured with: --resume keeps the run's own and refuses new ones.
# The distributed stage's launchers (bakeoff.stages.distributed.shared.LAUNCHERS, which a test holds
# this to), named here so `bakeoff --help` imports nothing heavy.
LAUNCHER_NAMES = ("torchrun", "mwms", "mirrored", "accelerate", "lightning", "ray-torch", "ray-tf")
FIXED_ON_RESUME = (
    "model",
    "torch_ref",
    "keras_ref",
    "input_shape",
    "out",
    "stages",
    "quick",
    "modes",
    "epochs",
    "batch_size",
    "lr",
    "device",
    "data",
    "compile_mode",
    "atol",
    "grad_atol",
    "batch",
    "artifacts",
    "runtimes",
    "batch_sizes",
    "seed",
    "threads",
    "backends",
    "servers",
    "slo_ms",
    "duration",
)


def with_backends(options: dict[str, Any], stages: list[str], backends_text: str) -> list[str]:
    """--backends: Keras on those backends joins the run (its parity stage, training modes and inference
    runtimes on the keras-twin artifact); returns the stages, with 'backends' added. Every training
    mode of those backends is added unless --modes already names some of them."""
    from bakeoff.runtimes import DEFAULT_RUNTIMES, backend_runtimes
    from bakeoff.stages.backends.stage import check_backends
    from bakeoff.stages.backends.stage import options_for as backends_options
    from bakeoff.stages.export.artifacts import BACKEND_ARTIFACTS, DEFAULT_ARTIFACTS
    from bakeoff.stages.train.shared import backend_modes

    backends = check_backends(split(backends_text))
    if not backends:
        return stages
    options["backends"] = backends_options(backends)
    if "train" in options:
        modes, wanted = options["train"]["modes"], backend_modes(backends)
        if not set(modes) & set(wanted):  # --modes naming some of them keeps just those
            options["train"]["modes"] = [*modes, *wanted]
    if "export" in options:
        options["export"]["artifacts"] = [
            *(options["export"]["artifacts"] or DEFAULT_ARTIFACTS),
            *BACKEND_ARTIFACTS,
        ]
    if "infer" in options:
        runtimes = options["infer"]["runtimes"] or list(DEFAULT_RUNTIMES)
        options["infer"]["runtimes"] = [
            *runtimes,
            *(r for r in backend_runtimes(backends) if r not in runtimes),
        ]
    return stages if "backends" in stages else ["backends", *stages]


def run(
    ctx: typer.Context,
    model: Model = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    out: Out = Path("bakeoff-runs"),
    stages: Annotated[
        str,
        typer.Option(
            "--stages",
            help="Comma-separated stages, in order: parity, train, pipeline, export, infer, serve, "
            "distributed, debug (backends comes with --backends; serve is not in the default: it starts four "
            "model servers and loads each for minutes; distributed is added by itself when more than "
            "one GPU is found, on the CPU ask for it; debug is opt-in: planted faults and a pdb session, "
            "see `bakeoff debug`).",
        ),
    ] = "parity,train,pipeline,export,infer",
    backends: Backends = "",
    quick: Annotated[bool, typer.Option("--quick", help="Every stage at reduced depth (1 epoch).")] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Finish an earlier run directory: keep its finished cases, redo the rest."
        ),
    ] = None,
    modes: Modes = ALL_MODES,
    epochs: Epochs = 3,
    batch_size: BatchSize = 64,
    lr: Lr = 1e-3,
    device: Device = "cpu",
    data: Data = None,
    compile_mode: CompileMode = "default",
    atol: Atol = 1e-5,
    grad_atol: GradAtol = 1e-4,
    batch: Batch = 8,
    artifacts: Artifacts = ALL_ARTIFACTS,
    runtimes: Runtimes = ALL_RUNTIMES,
    batch_sizes: BatchSizes = DEFAULT_BATCHES,
    servers: Servers = "all",
    slo_ms: SloMs = 50.0,
    duration: Duration = None,
    tfserving_bin: TfServingBin = None,
    ray_address: RayAddress = None,
    seed: Seed = 0,
    threads: Threads = None,
    margin: Margin = DEFAULT_MARGIN,
    goal: Goal = None,
    team: Team = None,
    deploy: Deploy = None,
    hardware: Hardware = None,
    config: Config = None,
    track: Annotated[
        str,
        typer.Option(
            "--track",
            help="Also log to mlflow and/or tensorboard (comma-separated). MLflow: MLFLOW_TRACKING_URI, else "
            "a sqlite store in the run directory.",
        ),
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """The main job: parity, training modes, input pipelines, exports, inference; then the report.

    Writes report.html, summary.md and results.json into the run directory, with a verdict for the
    --goal/--team/--deploy/--hardware given (or in --config; `bakeoff recommend` re-weighs it later).
    Exits 1 when any check fails; every finished case is already in records.jsonl, and --resume
    finishes a run that was stopped.

    Your own model: --torch FILE.py:NAME and/or --keras FILE.py:NAME with --input-shape. bakeoff derives
    a spec from it (the torch side when both are given), keeps spec.yaml and the generated twin in the
    run directory, checks your model against that twin (and your pair, when both are given) in the
    parity stage, and runs every stage on the twins built from the derived spec.
    """
    from bakeoff import runner

    if track:
        from bakeoff.results.tracking import check_kinds

        check_kinds(split(track))
    from bakeoff.measure.env import gpus
    from bakeoff.report.constraints import given as given_constraints
    from bakeoff.report.live import resumed_plan
    from bakeoff.run_options import RunSettings, run_options

    given = given_constraints(constraint_flags(goal, team, deploy, hardware), config)
    if resume is not None:
        # A resumed run keeps the options it was measured with; only how its verdict is weighed may change.
        fixed = [f"--{name.replace('_', '-')}" for name in FIXED_ON_RESUME if given_flag(ctx, name)]
        if fixed:
            raise UsageError(
                f"--resume finishes a run with its own options; {', '.join(fixed)} cannot change it "
                "(start a new run for other options; --goal, --team, --deploy, --hardware, --config, "
                "--margin and --track apply)"
            )
        weighing = {**given, **({"margin": margin} if given_flag(ctx, "margin") else {})}
        _execute(
            lambda progress, on_stage: runner.resume(resume, progress, on_stage, weighing),
            as_json,
            resumed_plan(resume),
            track,
        )
        return

    def listed(text: str) -> tuple[str, ...] | None:
        names = all_or(text)
        return None if names is None else tuple(names)

    settings = RunSettings(
        quick=quick,
        modes=tuple(split(modes)),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        device=device,
        data=data,
        compile_mode=compile_mode,
        atol=atol,
        grad_atol=grad_atol,
        batch=batch,
        artifacts=listed(artifacts),
        runtimes=listed(runtimes),
        batch_sizes=tuple(parse_batch_sizes(batch_sizes)),
        servers=listed(servers),
        slo_ms=slo_ms,
        duration=duration,
        tfserving_bin=tfserving_bin,
        ray_address=ray_address,
        seed=seed,
        threads=threads,
        margin=margin,
    )
    options = run_options(settings)
    chosen = with_backends(options, split(stages), backends)
    # Data parallelism can pay on several GPUs; on the CPU its workers only share the cores: opt-in.
    if not given_flag(ctx, "stages") and len(gpus()) > 1 and "distributed" not in chosen:
        chosen.append("distributed")
    byo = user_model(model, torch_ref, keras_ref, input_shape)
    _run_stages(model, out, chosen, options, quick, as_json, given, track, byo)


def train(
    model: Model = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    modes: Modes = ALL_MODES,
    backends: Backends = "",
    epochs: Epochs = 3,
    batch_size: BatchSize = 64,
    lr: Lr = 1e-3,
    device: Device = "cpu",
    data: Data = None,
    compile_mode: CompileMode = "default",
    out: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the twins in every mode from the same weights, data and order; compare speed and accuracy.

    Prints throughput with spread, compile time, accuracy, time to accuracy and utilization per mode.
    Same as `bakeoff run --stages train`.
    """
    from bakeoff.stages.train.stage import options_for as train_options

    options = {
        "threads": threads,
        "seed": seed,
        "train": train_options(split(modes), epochs, batch_size, lr, device, data, compile_mode, False),
    }
    byo = user_model(model, torch_ref, keras_ref, input_shape)
    stages = with_backends(options, ["train"], backends)
    _run_stages(model, out, stages, options, False, as_json, byo=byo)


def distributed(
    model: Model = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    workers: Annotated[
        str,
        typer.Option(
            "--workers", help="Comma-separated worker counts per node, e.g. 1,2 (1 is the baseline)."
        ),
    ] = "1,2",
    launchers: Annotated[
        str,
        typer.Option(
            "--launchers",
            help="Comma-separated: torchrun (DDP), mwms (Keras under MultiWorkerMirroredStrategy, a "
            "process per worker), mirrored (Keras under MirroredStrategy, one process), accelerate, "
            "lightning (the raw loop's wrappers, under torchrun), ray-torch, ray-tf (Ray Train's "
            "TorchTrainer and TensorflowTrainer on a Ray cluster; `ray` names both). The last four: "
            "pip install 'bakeoff[distributed]'.",
        ),
    ] = ",".join(DEFAULT_LAUNCHERS),
    scaling: Annotated[
        str,
        typer.Option(
            "--scaling",
            help="strong (the global batch fixed), weak (the batch per worker fixed), or strong,weak.",
        ),
    ] = "strong,weak",
    nodes: Annotated[
        str,
        typer.Option(
            "--nodes",
            help="host1:port,host2:port: one bakeoff per node, each with its --node-rank; the first is "
            "torchrun's rendezvous, node k's TensorFlow workers listen on its port + i.",
        ),
    ] = "",
    node_rank: Annotated[int, typer.Option("--node-rank", min=0, help="This node's place in --nodes.")] = 0,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="The Ray cluster the ray-torch and ray-tf launchers run on: 'auto' (`ray start --head` on "
            "this machine) or HEAD:6379; its workers must see this machine's files [default: "
            "$BAKEOFF_RAY_ADDRESS, else a local cluster on 127.0.0.1 bakeoff starts and stops per case].",
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", min=1, help="Global batches per epoch (default: the whole split)."),
    ] = None,
    epochs: Epochs = 1,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Global batch (strong scaling); per worker for weak.")
    ] = 64,
    lr: Lr = 1e-3,
    device: Device = "cpu",
    data: Data = None,
    quick: Annotated[bool, typer.Option("--quick", help="A dozen steps, one epoch.")] = False,
    out: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Data-parallel training: torchrun + DDP against Keras under MultiWorkerMirroredStrategy and
    MirroredStrategy (and, asked for, Accelerate, Lightning and Ray Train's TorchTrainer and
    TensorflowTrainer), same weights, data, split and Adam rule, at each worker count.

    Gate: each N-worker loss curve equals its framework's one-worker curve, and torch's equals Keras'.
    Measures step time, samples/s, strong/weak scaling efficiency, launch to first step, all-reduce
    time and peak RSS of the process trees. Same as `bakeoff run --stages distributed`.
    """
    from bakeoff.stages.distributed.stage import options_for, parse_nodes

    counts = [int(w) for w in split(workers) if w.isdigit()]
    if len(counts) != len(split(workers)) or not counts:
        raise UsageError(f"--workers '{workers}': comma-separated counts, e.g. 1,2")
    options = {
        "threads": threads,
        "seed": seed,
        "quick": quick,
        "distributed": options_for(
            split(launchers),
            counts,
            split(scaling),
            parse_nodes(nodes),
            node_rank,
            epochs,
            batch_size,
            lr,
            device,
            data,
            quick,
            steps,
            threads,
            ray_address,
        ),
    }
    byo = user_model(model, torch_ref, keras_ref, input_shape)
    _run_stages(model, out, ["distributed"], options, quick, as_json, byo=byo)


def pipeline(
    model: Annotated[str, typer.Argument(help=MODEL_HELP + " Used for the input-bound check.")] = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    batch_size: BatchSize = 64,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer batches and passes.")] = False,
    out: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Input pipelines: torch DataLoader (0..N workers) against tf.data (sequential, AUTOTUNE, cache).

    The workload is real: MNIST digits PNG-encoded, then decoded, padded, randomly cropped and flipped,
    and normalized, identically in both. Also trains MODEL (or lenet when MODEL does not take 28x28
    digits) fed by each framework's fastest pipeline and from memory, and says whether it is input-bound.
    """
    options = {
        "threads": threads,
        "seed": seed,
        "quick": quick,
        "train": {"batch_size": batch_size, "lr": 1e-3},
    }
    byo = user_model(model, torch_ref, keras_ref, input_shape)
    _run_stages(model, out, ["pipeline"], options, quick, as_json, byo=byo)


def infer(
    model: Model = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    runtimes: Runtimes = ALL_RUNTIMES,
    backends: Backends = "",
    batch_sizes: BatchSizes = DEFAULT_BATCHES,
    artifacts: Artifacts = ALL_ARTIFACTS,
    epochs: FitEpochs = 3,
    data: Data = None,
    opset: Opset = 18,
    quick: Annotated[bool, typer.Option("--quick", help="1 epoch; batch 1 and the largest only.")] = False,
    out: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Export the trained twins every way, verify each artifact, and time it in every runtime that runs it.

    Per (runtime, artifact): latency p50/p99 per batch size, throughput, cold start, peak RSS, accuracy
    against fp32, and MLPerf's 99% gate for reduced precision. Same as `bakeoff run --stages export,infer`.
    """
    from bakeoff.stages.export.stage import options_for as export_options
    from bakeoff.stages.infer.stage import options_for as infer_options

    options = {
        "threads": threads,
        "seed": seed,
        "quick": quick,  # read by the verdict, the claims, `runs` and `compare`
        "export": export_options(all_or(artifacts), epochs, 64, 1e-3, data, opset, quick),
        "infer": infer_options(all_or(runtimes), parse_batch_sizes(batch_sizes), quick),
    }
    stages = with_backends(options, ["export", "infer"], backends)
    byo = user_model(model, torch_ref, keras_ref, input_shape)
    _run_stages(model, out, stages, options, quick, as_json, byo=byo)


def export(
    model: Model = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="tfserving (<name>/1/saved_model.pb), triton (model repository with config.pbtxt), "
            "torchserve (<name>.mar), onnx (<name>.onnx) or tflite (<name>-{fp32,fp16,drq,int8}.tflite).",
        ),
    ] = "onnx",
    dest: Annotated[Path, typer.Option("--to", help="Folder to write the layout into.")] = Path("deploy"),
    source: Annotated[
        str | None,
        typer.Option("--from", help="Which twin to export: torch or keras [default: the target's own]."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name in the layout [default: MODEL].")
    ] = None,
    epochs: FitEpochs = 3,
    data: Data = None,
    opset: Opset = 18,
    runs: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Write what a model server loads: the trained twin exported, verified, then laid out for the target.

    Your own model: --torch or --keras FILE.py:NAME with --input-shape; its derived twin is exported.
    Exits 1, writing nothing, when the artifact it needs fails to export or verify.
    """
    from bakeoff import runner
    from bakeoff.spec.derive import model_spec_name
    from bakeoff.spec.load import resolve
    from bakeoff.stages.export import deployment
    from bakeoff.stages.export.stage import options_for as export_options

    byo = user_model(model, torch_ref, keras_ref, input_shape)
    # Your own model's graph is derived in the run: until then, what can be checked without it is.
    known = None if byo else resolve(model)
    label = name or (known.spec.name if known else model_spec_name(str(byo and byo["name"])))
    needed = deployment.check(
        known, target, source, dest, label, inputs=len(byo["input_shapes"]) if byo else None
    )
    options = {
        "threads": threads,
        "seed": seed,
        "export": export_options(list(needed), epochs, 64, 1e-3, data, opset, False),
    }
    out = console()
    lines = quiet if as_json else progress(out)
    outcome = runner.run_stages(model, runs, ["export"], options, lines, byo=byo)
    graph = outcome.graph or known
    assert graph is not None
    if known is None:
        deployment.check(graph, target, source, dest, label)
    written = deployment.write_from_run(graph, target, source, outcome.path, outcome.latest, dest, label)
    if as_json:
        print_json(
            {"run_dir": str(outcome.path), "written": [str(p) for p in written], "records": outcome.latest}
        )
        return
    from bakeoff.report.terminal import export_tables

    for part in export_tables(outcome.latest):
        out.print(part)
    for path in written:
        out.print(f"wrote {path}")
    for r in deployment.under_gate(outcome.latest, target, source):
        out.print(f"[yellow]warning:[/] {r['case']} is under the 99% accuracy gate: {r['message']}")


def convert(
    model: Model = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    direction: Annotated[
        str,
        typer.Option(
            "--direction",
            help="torch-to-tf (PyTorch -> ONNX -> TensorFlow with onnx2tf), keras-to-torch (Keras -> ONNX -> "
            "PyTorch with onnx2torch), or both.",
        ),
    ] = "both",
    setup: Annotated[
        bool,
        typer.Option(
            "--setup",
            help="Create onnx2tf's own virtualenv first when it is missing (about 90 s and 2.6 GB; kept in "
            "~/.cache/bakeoff/onnx2tf-env or $BAKEOFF_CONVERTER_ENV). onnx2tf pins old numpy, protobuf and "
            "TensorFlow, so it never goes into bakeoff's environment.",
        ),
    ] = False,
    epochs: FitEpochs = 3,
    data: Data = None,
    opset: Opset = 18,
    runs: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring the trained model across frameworks via ONNX and check it still computes the same thing.

    The PyTorch twin's ONNX file becomes a TensorFlow SavedModel (onnx2tf) and the Keras twin's ONNX file a
    torch.nn.Module (onnx2torch); each is run over the validation set and compared with the model it came
    from. Your own model: --torch or --keras FILE.py:NAME with --input-shape. Exits 1 when a conversion
    fails or does not match.
    """
    from bakeoff import runner
    from bakeoff.stages.export.converters import conversions
    from bakeoff.stages.export.stage import options_for as export_options

    byo = user_model(model, torch_ref, keras_ref, input_shape)
    wanted = conversions(direction)
    out = console()
    lines = quiet if as_json else progress(out)
    if "torch-onnx-tf" in wanted:
        from bakeoff.stages.export.converters.onnx2tf_env import ensure_env

        ensure_env(lines, install=setup)  # without --setup, a missing env is one line naming the fix
    export = export_options(wanted, epochs, 64, 1e-3, data, opset, False)
    options = {"threads": threads, "seed": seed, "export": export}
    outcome = runner.run_stages(model, runs, ["export"], options, lines, byo=byo)
    if as_json:
        print_json({"run_dir": str(outcome.path), "records": outcome.latest})
    else:
        from bakeoff.report.terminal import conversion_lines, export_tables

        for part in [*export_tables(outcome.latest), conversion_lines(outcome.latest, wanted)]:
            out.print(part)
    if outcome.failed:
        raise typer.Exit(1)


def _run_stages(
    model: str,
    out: Path,
    stages: list[str],
    options: dict[str, Any],
    quick: bool,
    as_json: bool,
    constraints: dict[str, str] | None = None,
    track: str = "",
    byo: dict[str, Any] | None = None,
) -> None:
    from bakeoff import runner
    from bakeoff.report.live import run_name

    name = run_name(model) if byo is None else byo["name"]
    _execute(
        lambda progress, on_stage: runner.run_stages(
            model, out, stages, options, progress, on_stage, constraints=constraints, byo=byo
        ),
        as_json,
        (out, name, quick, stages),
        track,
    )


def user_model(
    model: str, torch_ref: str | None, keras_ref: str | None, input_shape: list[str] | None
) -> dict[str, Any] | None:
    """--torch/--keras/--input-shape as the runner takes them; None for a zoo model or a spec."""
    if not (torch_ref or keras_ref):
        if input_shape:
            raise UsageError("--input-shape is for your own model (--torch/--keras); a spec has its shapes")
        return None
    if model != "simplenet":
        raise UsageError("give either a MODEL or --torch/--keras, not both")
    from bakeoff.cli.models import input_shapes
    from bakeoff.twins.byo import parse_ref

    names = [parse_ref(ref, flag)[1] for ref, flag in ((torch_ref, "--torch"), (keras_ref, "--keras")) if ref]
    shapes, readings = input_shapes(input_shape)
    for reading in readings:
        typer.echo(reading, err=True)
    return {
        "torch": torch_ref,
        "keras": keras_ref,
        "input_shapes": [list(s) for s in shapes],
        "name": names[0],
    }


def _execute(start: Callable[[Any, Any], Any], as_json: bool, plan: Plan | None, track: str = "") -> None:
    """Runs a new or resumed run with a live display, writes its report (and tracking), prints the
    summary; exit 1 if any check failed. `plan` feeds the time estimate."""
    from bakeoff.report.build import write_after_run
    from bakeoff.report.live import RunProgress, estimates

    out = console()
    if as_json:
        outcome = start(quiet, quiet)
    else:
        runs, model, quick, stages = plan or (Path("bakeoff-runs"), "", False, [])
        with RunProgress(out, stages, estimates(runs, model, quick)) as live:
            outcome = start(live, live.stage)
    report = write_after_run(outcome.path, None, split(track))
    if as_json:
        print_json({"run_dir": str(outcome.path), "report": report, "records": outcome.latest})
    else:
        from bakeoff.report.terminal import run_summary

        if "error" in report:
            out.print(f"[red]report: {report['error']}[/]", highlight=False)
        for part in run_summary(outcome):
            out.print(part)
        if report.get("headline"):
            out.print(f"[bold]verdict:[/] {report['headline']}", highlight=False)
        if report.get("machine"):
            out.print(f"[yellow bold]warning:[/] {report['machine']}", highlight=False)
        for path in report.get("files", []):
            out.print(f"report: {path}", highlight=False)
        for line in report.get("tracked", []):
            out.print(f"tracked: {line}", highlight=False)
    if outcome.failed:
        raise typer.Exit(1)


def debug(
    model: Model = "simplenet",
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    modes: Modes = ALL_MODES,
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            help="Comma-separated faults to plant: nan (0/0 in one layer), grad (an exploding gradient), "
            "shape (a hard-coded batch size meets the last, partial batch), dtype (a float64 constant).",
        ),
    ] = "nan,grad,shape,dtype",
    no_pdb: Annotated[
        bool, typer.Option("--no-pdb", help="Leave out the pdb/print() probe (one subprocess per framework).")
    ] = False,
    out: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Plant known faults in copies of the twins and see which debugging tools find them, in every mode.

    Per (fault, tool, mode): found or not, steps after the fault, whether the message names the layer or
    op, whether it points at the source line, and the tool's overhead on step time with no fault acting.
    Tools: detect_anomaly, isfinite hooks and torch.compile's own errors; check_numerics, assert_all_finite,
    TerminateOnNaN and run_functions_eagerly; and bakeoff's own first-non-finite-layer finder. Then a real
    pdb session: do print() and breakpoint() inside forward/call run every step, at trace time, or never?
    Same as `bakeoff run --stages debug`.
    """
    from bakeoff.stages.debug.stage import options_for as debug_options

    options = {
        "threads": threads,
        "seed": seed,
        "debug": debug_options(split(modes), split(faults), not no_pdb),
    }
    byo = user_model(model, torch_ref, keras_ref, input_shape)
    if as_json:
        from bakeoff import runner
        from bakeoff.report.build import write_after_run
        from bakeoff.report.debug import digest

        outcome = runner.run_stages(model, out, ["debug"], options, quiet, byo=byo)
        report = write_after_run(outcome.path, None, [])
        print_json({"run_dir": str(outcome.path), "report": report, **(digest(outcome.latest) or {})})
        if outcome.failed:
            raise typer.Exit(1)
        return
    _run_stages(model, out, ["debug"], options, False, False, byo=byo)


COMMANDS = (run, train, pipeline, infer, export, convert, distributed, debug)
