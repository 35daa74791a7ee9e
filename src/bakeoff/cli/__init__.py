"""The `bakeoff` command: parses arguments, calls the library, prints. Nothing else.

Everything heavy is imported inside the commands, so `bakeoff --help` starts without torch,
TensorFlow, numpy or pydantic.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bakeoff.errors import BakeoffError, UsageError

app = typer.Typer(
    help="PyTorch or TensorFlow? bakeoff builds one model in both, with the same weights, proves they "
    "compute the same thing, and measures them. Start with `bakeoff zoo` and `bakeoff run`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable JSON result instead of tables.")
]
Atol = Annotated[
    float, typer.Option("--atol", help="Max abs difference allowed for outputs and activations.")
]
GradAtol = Annotated[
    float, typer.Option("--grad-atol", help="Max abs difference allowed for gradients and loss.")
]
Batch = Annotated[int, typer.Option("--batch", min=1, help="Samples in the parity batch.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the canonical weights and the batch.")]
Threads = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="Threads for every framework alike [default: physical cores]."),
]
MODEL_HELP = "A zoo model name (see `bakeoff zoo`) or a path to a YAML spec."


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _print_json(data: Any) -> None:
    from bakeoff.results.store import clean

    typer.echo(json.dumps(clean(data), indent=2, default=str))


@app.command()
def zoo(as_json: JsonFlag = False) -> None:
    """List the built-in models with parameters, FLOPs per sample and input shape."""
    from bakeoff.report.terminal import zoo_rows, zoo_table
    from bakeoff.spec.load import resolve, zoo_names

    rows = zoo_rows([resolve(name) for name in zoo_names()])
    if as_json:
        _print_json(rows)
    else:
        _console().print(zoo_table(rows))


@app.command()
def show(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    code: Annotated[
        bool, typer.Option("--code", help="Print equivalent PyTorch and Keras source code.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a model's layers with shapes, parameters and FLOPs, or (--code) its PyTorch and Keras code."""
    from bakeoff.spec.load import resolve

    graph = resolve(model)
    if code:
        from bakeoff.spec.codegen import keras_code, torch_code

        if as_json:
            _print_json({"torch": torch_code(graph), "keras": keras_code(graph)})
            return
        typer.echo(f"# ---- PyTorch ({graph.spec.name}) ----\n{torch_code(graph)}")
        typer.echo(f"# ---- Keras ({graph.spec.name}) ----\n{keras_code(graph)}")
        return
    if as_json:
        from bakeoff.spec.flops import describe

        _print_json(describe(graph))
        return
    from bakeoff.report.terminal import layers_table

    _console().print(layers_table(graph))


def parse_shape(text: str) -> tuple[int, ...]:
    parts = re.split(r"[,x]", text.replace(" ", "").strip("()[]"))
    shape = tuple(int(p) for p in parts if p.isdigit())
    if len(shape) != len(parts) or any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape {text!r}: expected positive integers like 784 or 28,28,1")
    return shape


@app.command()
def parity(
    model: Annotated[str | None, typer.Argument(help=MODEL_HELP + " Leave out with --torch/--keras.")] = None,
    torch_ref: Annotated[
        str | None,
        typer.Option("--torch", help="Your own torch model: FILE.py:NAME (a module, class or factory)."),
    ] = None,
    keras_ref: Annotated[
        str | None, typer.Option("--keras", help="Your own Keras model: FILE.py:NAME (a model or factory).")
    ] = None,
    input_shape: Annotated[
        list[str] | None,
        typer.Option(
            "--input-shape",
            help="Per-sample input shape for --torch/--keras, e.g. 784 or 28,28,1 "
            "(images channels-last; torch gets NCHW). Repeat for several inputs.",
        ),
    ] = None,
    atol: Atol = 1e-5,
    grad_atol: GradAtol = 1e-4,
    batch: Batch = 8,
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Check that the PyTorch and Keras twins compute the same thing: outputs, every layer, gradients.

    Exits 1 when parity fails and names the first layer that diverges.
    """
    from bakeoff.twins import parity as p

    options = p.ParityOptions(atol=atol, grad_atol=grad_atol, batch=batch, seed=seed, threads=threads)
    if torch_ref or keras_ref:
        if model:
            raise UsageError("give either a MODEL or --torch/--keras, not both")
        if not (torch_ref and keras_ref):
            raise UsageError("--torch and --keras go together: give both FILE.py:NAME")
        if not input_shape:
            raise UsageError("--torch/--keras need --input-shape, e.g. --input-shape 784")
        result = p.check_pair(torch_ref, keras_ref, [parse_shape(s) for s in input_shape], options)
    else:
        from bakeoff.spec.load import resolve

        graph = resolve(model or "simplenet")
        console = None if as_json else _console()
        if console:
            with console.status(f"parity of {graph.spec.name}: one worker per framework"):
                result = p.check(graph, options)
        else:
            result = p.check(graph, options)
    if as_json:
        _print_json(result.to_dict())
    else:
        from bakeoff.report.terminal import parity_tables

        console = _console()
        for part in parity_tables(result):
            console.print(part)
    if not result.passed:
        raise typer.Exit(1)


ALL_MODES = "torch-eager,torch-compile,keras-eager,keras-graph,keras-xla"
Modes = Annotated[
    str,
    typer.Option(
        "--modes",
        help="Comma-separated training modes: torch-eager, torch-compile (torch.compile), "
        "keras-eager (fit run_eagerly), keras-graph (fit as tf.function), keras-xla (jit_compile).",
    ),
]
Epochs = Annotated[int, typer.Option("--epochs", min=1, help="Training epochs per mode.")]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, help="Training batch size, the same in every mode.")
]
Lr = Annotated[float, typer.Option("--lr", help="Adam learning rate (betas 0.9/0.999, eps 1e-7 in both).")]
Device = Annotated[str, typer.Option("--device", help="cpu or cuda (CUDA needs a GPU and GPU builds).")]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="mnist, synthetic, or FILE.npz with arrays x and y [default: mnist when the "
        "model takes 28x28 digits, else synthetic].",
    ),
]
CompileMode = Annotated[
    str, typer.Option("--compile-mode", help="torch.compile mode: default, reduce-overhead, max-autotune.")
]


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


Goal = Annotated[
    str | None,
    typer.Option(
        "--goal", help="research or production: weighs training and code, or serving and deploying."
    ),
]
Team = Annotated[
    str | None,
    typer.Option("--team", help="pythonic or structured: weighs eager speed, or code size."),
]
Deploy = Annotated[
    str | None,
    typer.Option(
        "--deploy", help="cloud, mobile, edge, browser or containers: which runtimes and artifacts count."
    ),
]
Hardware = Annotated[
    str | None, typer.Option("--hardware", help="cpu or gpu [default: what the run's machine has].")
]
Config = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file with goal/team/deploy/hardware; flags override it."),
]
Track = Annotated[
    str,
    typer.Option(
        "--track",
        help="Also log to mlflow and/or tensorboard (comma-separated). MLflow: MLFLOW_TRACKING_URI, else a "
        "sqlite store in the run directory.",
    ),
]


def _constraint_flags(
    goal: str | None, team: str | None, deploy: str | None, hardware: str | None
) -> dict[str, str | None]:
    return {"goal": goal, "team": team, "deploy": deploy, "hardware": hardware}


def _prompt(key: str, choices: list[str], default: str) -> str:
    from rich.prompt import Prompt

    return Prompt.ask(key, choices=choices, default=default)


def _interactive(as_json: bool) -> bool:
    return not as_json and sys.stdin.isatty() and sys.stdout.isatty()


def _execute(
    start: Any,
    as_json: bool,
    plan: tuple[Path, str, bool, list[str]] | None = None,
    constraints: Any = None,
    track: str = "",
) -> None:
    """Runs a new or resumed run with a live display, writes its report (and tracking), prints the
    summary; exit 1 if any check failed. `plan` (out, model, quick, stages) feeds the time estimate."""
    from bakeoff.report.live import RunProgress, estimates

    console = _console()
    if as_json:
        outcome = start(lambda _: None, lambda _: None)
    else:
        out, model, quick, stages = plan or (Path("bakeoff-runs"), "", False, [])
        with RunProgress(console, stages, estimates(out, model, quick)) as live:
            outcome = start(live, live.stage)
    from bakeoff.report.build import write_after_run

    report = write_after_run(outcome.path, constraints, _split(track))
    if "error" in report and not as_json:
        console.print(f"[red]report: {report['error']}[/]", highlight=False)
    if as_json:
        _print_json({"run_dir": str(outcome.path), "report": report, "records": outcome.latest})
    else:
        from bakeoff.report.terminal import run_summary

        for part in run_summary(outcome):
            console.print(part)
        if report.get("headline"):
            console.print(f"[bold]verdict:[/] {report['headline']}", highlight=False)
        for path in report.get("files", []):
            console.print(f"report: {path}", highlight=False)
        for line in report.get("tracked", []):
            console.print(f"tracked: {line}", highlight=False)
    if outcome.failed:
        raise typer.Exit(1)


@app.command()
def run(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)] = "simplenet",
    out: Annotated[Path, typer.Option("--out", help="Where run directories are made.")] = Path(
        "bakeoff-runs"
    ),
    stages: Annotated[
        str,
        typer.Option(
            "--stages", help="Comma-separated stages, in order: parity, train, pipeline, export, infer."
        ),
    ] = "parity,train,pipeline,export,infer",
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
    seed: Seed = 0,
    threads: Threads = None,
    goal: Goal = None,
    team: Team = None,
    deploy: Deploy = None,
    hardware: Hardware = None,
    config: Config = None,
    track: Track = "",
    as_json: JsonFlag = False,
) -> None:
    """The main job: parity, training modes, input pipelines, exports, inference; then the report.

    Writes report.html, summary.md and results.json into the run directory, with a verdict for the
    --goal/--team/--deploy/--hardware given (or in --config; `bakeoff recommend` re-weighs it later).
    Exits 1 when any check fails; every finished case is already in records.jsonl, and --resume
    finishes a run that was stopped.
    """
    from bakeoff import runner

    if track:
        from bakeoff.results.tracking import check_kinds

        check_kinds(_split(track))
    from bakeoff.report.constraints import given as given_constraints
    from bakeoff.report.live import resumed_plan, run_name
    from bakeoff.stages.export.stage import options_for as export_options
    from bakeoff.stages.infer.stage import options_for as infer_options
    from bakeoff.stages.train.stage import options_for as train_options

    given = given_constraints(_constraint_flags(goal, team, deploy, hardware), config)
    if resume is not None:
        _execute(
            lambda progress, on_stage: runner.resume(resume, progress, on_stage),
            as_json,
            plan=resumed_plan(resume),
            track=track,
        )
        return
    options = {
        "threads": threads,
        "seed": seed,
        "parity": {"atol": atol, "grad_atol": grad_atol, "batch": batch},
        "train": train_options(_split(modes), epochs, batch_size, lr, device, data, compile_mode, quick),
        "export": export_options(_all_or(ALL_ARTIFACTS), epochs, batch_size, lr, data, 18, quick),
        "infer": infer_options(_all_or(ALL_RUNTIMES), _batch_sizes(DEFAULT_BATCHES), quick),
        "quick": quick,
    }
    chosen = _split(stages)
    _execute(
        lambda progress, on_stage: runner.run_stages(
            model, out, chosen, options, progress, on_stage, constraints=given
        ),
        as_json,
        plan=(out, run_name(model), quick, chosen),
        track=track,
    )


@app.command()
def train(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)] = "simplenet",
    modes: Modes = ALL_MODES,
    epochs: Epochs = 3,
    batch_size: BatchSize = 64,
    lr: Lr = 1e-3,
    device: Device = "cpu",
    data: Data = None,
    compile_mode: CompileMode = "default",
    out: Annotated[Path, typer.Option("--out", help="Where run directories are made.")] = Path(
        "bakeoff-runs"
    ),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the twins in every mode from the same weights, data and order; compare speed and accuracy.

    Prints throughput with spread, compile time, accuracy, time to accuracy and utilization per mode.
    Same as `bakeoff run --stages train`.
    """
    from bakeoff import runner
    from bakeoff.report.live import run_name
    from bakeoff.stages.train.stage import options_for as train_options

    options = {
        "threads": threads,
        "seed": seed,
        "train": train_options(_split(modes), epochs, batch_size, lr, device, data, compile_mode, False),
    }
    _execute(
        lambda progress, on_stage: runner.run_stages(model, out, ["train"], options, progress, on_stage),
        as_json,
        plan=(out, run_name(model), False, ["train"]),
    )


@app.command()
def pipeline(
    model: Annotated[str, typer.Argument(help=MODEL_HELP + " Used for the input-bound check.")] = "simplenet",
    batch_size: BatchSize = 64,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer batches and passes.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Where run directories are made.")] = Path(
        "bakeoff-runs"
    ),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Input pipelines: torch DataLoader (0..N workers) against tf.data (sequential, AUTOTUNE, cache).

    The workload is real: MNIST digits PNG-encoded, then decoded, padded, randomly cropped and flipped,
    and normalized, identically in both. Also trains MODEL (or lenet when MODEL does not take 28x28
    digits) fed by each framework's fastest pipeline and from memory, and says whether it is input-bound.
    """
    from bakeoff import runner
    from bakeoff.report.live import run_name

    options = {
        "threads": threads,
        "seed": seed,
        "quick": quick,
        "train": {"batch_size": batch_size, "lr": 1e-3},
    }
    _execute(
        lambda progress, on_stage: runner.run_stages(model, out, ["pipeline"], options, progress, on_stage),
        as_json,
        plan=(out, run_name(model), quick, ["pipeline"]),
    )


ALL_ARTIFACTS = "all"
ALL_RUNTIMES = "all"
DEFAULT_BATCHES = "1,8,64,256"
Artifacts = Annotated[
    str,
    typer.Option(
        "--artifacts",
        help="Comma-separated artifacts to export, or 'all': torch-onnx, torch-pt2, torch-torchscript, "
        "keras-savedmodel, keras-onnx, keras-tflite-{fp32,fp16,drq,int8}, {torch,keras}-onnx-int8-{dynamic,"
        "static}; torch-twin always. Quantized ones bring their source along. The conversions "
        "torch-onnx-tf and keras-onnx-torch are `bakeoff convert`'s, not in 'all'.",
    ),
]
Runtimes = Annotated[
    str,
    typer.Option(
        "--runtimes",
        help="Comma-separated runtimes, or 'all': torch-eager, torch-compile, exported-program, torchscript, "
        "tf-savedmodel, tf-xla, onnxruntime, litert, onnx2torch (runs keras-onnx-torch); on a GPU also "
        "torch-eager-cuda, torch-compile-cuda, onnxruntime-cuda, onnxruntime-tensorrt.",
    ),
]
BatchSizes = Annotated[str, typer.Option("--batch-sizes", help="Comma-separated inference batch sizes.")]
Opset = Annotated[int, typer.Option("--opset", help="ONNX opset of both ONNX exporters.")]
Out = Annotated[Path, typer.Option("--out", help="Where run directories are made.")]
Runs = Annotated[Path, typer.Option("--runs", help="Where the run directory is made.")]
FitEpochs = Annotated[int, typer.Option("--epochs", min=1, help="Epochs of training before export.")]


def _all_or(text: str) -> list[str] | None:
    """None for 'all' (every choice), else the comma-separated names."""
    return None if text.strip() == "all" else _split(text)


def _batch_sizes(text: str) -> list[int]:
    try:
        return [int(b) for b in _split(text)]
    except ValueError as exc:
        raise UsageError(f"--batch-sizes {text!r}: expected integers like 1,8,64,256") from exc


@app.command()
def infer(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)] = "simplenet",
    runtimes: Runtimes = ALL_RUNTIMES,
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
    from bakeoff import runner
    from bakeoff.report.live import run_name
    from bakeoff.stages.export.stage import options_for as export_options
    from bakeoff.stages.infer.stage import options_for as infer_options

    options = {
        "threads": threads,
        "seed": seed,
        "export": export_options(_all_or(artifacts), epochs, 64, 1e-3, data, opset, quick),
        "infer": infer_options(_all_or(runtimes), _batch_sizes(batch_sizes), quick),
    }
    _execute(
        lambda progress, on_stage: runner.run_stages(
            model, out, ["export", "infer"], options, progress, on_stage
        ),
        as_json,
        plan=(out, run_name(model), quick, ["export", "infer"]),
    )


@app.command()
def export(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)] = "simplenet",
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="tfserving (<name>/1/saved_model.pb), triton (model repository with config.pbtxt), "
            "torchserve (<name>.mar), onnx (<name>.onnx) or tflite (<name>-{fp32,fp16,drq,int8}.tflite).",
        ),
    ] = "onnx",
    dest: Annotated[Path, typer.Option("--out", help="Folder to write the layout into.")] = Path("deploy"),
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
    runs: Runs = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Write what a model server loads: the trained twin exported, verified, then laid out for the target.

    Exits 1, writing nothing, when the artifact it needs fails to export or verify.
    """
    from bakeoff import runner
    from bakeoff.spec.load import resolve
    from bakeoff.stages.export import deployment
    from bakeoff.stages.export.stage import options_for as export_options

    graph = resolve(model)
    needed = deployment.check(graph, target, source, dest, name or graph.spec.name)
    options = {
        "threads": threads,
        "seed": seed,
        "export": export_options(list(needed), epochs, 64, 1e-3, data, opset, False),
    }
    console = _console()
    outcome = runner.run_stages(
        model, runs, ["export"], options, (lambda _: None) if as_json else _progress(console)
    )
    written = deployment.write_from_run(
        graph, target, source, outcome.path, outcome.latest, dest, name or graph.spec.name
    )
    if as_json:
        _print_json(
            {"run_dir": str(outcome.path), "written": [str(p) for p in written], "records": outcome.latest}
        )
        return
    from bakeoff.report.terminal import export_tables

    for part in export_tables(outcome.latest):
        console.print(part)
    for path in written:
        console.print(f"wrote {path}")
    for r in deployment.under_gate(outcome.latest, target, source):
        console.print(f"[yellow]warning:[/] {r['case']} is under the 99% accuracy gate: {r['message']}")


@app.command()
def convert(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)] = "simplenet",
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
    runs: Runs = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring the trained model across frameworks via ONNX and check it still computes the same thing.

    The PyTorch twin's ONNX file becomes a TensorFlow SavedModel (onnx2tf) and the Keras twin's ONNX file a
    torch.nn.Module (onnx2torch); each is run over the validation set and compared with the model it came
    from. Exits 1 when a conversion fails or does not match.
    """
    from bakeoff import runner
    from bakeoff.stages.export.converters import conversions
    from bakeoff.stages.export.stage import options_for as export_options

    wanted = conversions(direction)
    console = _console()
    progress = (lambda _: None) if as_json else _progress(console)
    if "torch-onnx-tf" in wanted:
        from bakeoff.stages.export.converters.onnx2tf_env import ensure_env

        ensure_env(progress, install=setup)  # without --setup, a missing env is one line naming the fix
    export = export_options(wanted, epochs, 64, 1e-3, data, opset, False)
    options = {"threads": threads, "seed": seed, "export": export}
    outcome = runner.run_stages(model, runs, ["export"], options, progress)
    if as_json:
        _print_json({"run_dir": str(outcome.path), "records": outcome.latest})
    else:
        from bakeoff.report.terminal import conversion_lines, export_tables

        for part in [*export_tables(outcome.latest), conversion_lines(outcome.latest, wanted)]:
            console.print(part)
    if outcome.failed:
        raise typer.Exit(1)


RunDir = Annotated[Path, typer.Argument(help="A run directory, e.g. bakeoff-runs/20261125-101500-simplenet.")]


@app.command()
def report(
    run_dir: RunDir,
    goal: Goal = None,
    team: Team = None,
    deploy: Deploy = None,
    hardware: Hardware = None,
    config: Config = None,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild report.html, summary.md and results.json of a run from its records, without measuring.

    Works on a run that stopped halfway: the report says which stages are missing. The verdict uses
    the constraints the run was started with unless flags or --config change them.
    """
    from bakeoff.report.build import write_report
    from bakeoff.report.constraints import for_run

    run, constraints = for_run(run_dir, _constraint_flags(goal, team, deploy, hardware), config, None)
    built = write_report(run, constraints)
    if as_json:
        _print_json({"files": [str(f) for f in built.files], "verdict": built.verdict.to_dict()})
        return
    console = _console()
    if run.missing or not run.finished:
        console.print(
            f"[yellow]partial run:[/] no records for {', '.join(run.missing) or 'its last cases'}",
            highlight=False,
        )
    console.print(f"[bold]verdict:[/] {built.verdict.headline}", highlight=False)
    for path in built.files:
        console.print(f"wrote {path}", highlight=False)


@app.command()
def recommend(
    run_dir: RunDir,
    goal: Goal = None,
    team: Team = None,
    deploy: Deploy = None,
    hardware: Hardware = None,
    config: Config = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the verdict of a run for your constraints, from its stored records.

    Every reason quotes a number measured in that run; where confidence intervals overlap it says
    "no significant difference". Unset constraints are asked for when a terminal is attached.
    """
    from bakeoff.report.constraints import for_run
    from bakeoff.report.terminal import verdict_parts
    from bakeoff.report.verdict import recommend as decide

    run, constraints = for_run(
        run_dir,
        _constraint_flags(goal, team, deploy, hardware),
        config,
        _prompt if _interactive(as_json) else None,
    )
    verdict = decide(run, constraints)
    if as_json:
        _print_json(verdict.to_dict())
        return
    console = _console()
    for part in verdict_parts(verdict):
        console.print(part)


@app.command()
def runs(out: Out = Path("bakeoff-runs"), as_json: JsonFlag = False) -> None:
    """List the runs under --out, newest first: model, date, machine, headline numbers."""
    from bakeoff.report.runs import runs_table
    from bakeoff.results.runs import list_runs, runs_json

    rows = list_runs(out)
    if as_json:
        _print_json(runs_json(rows))
        return
    if not rows:
        _console().print(f"no runs under {out} (`bakeoff run` makes one)", highlight=False)
        return
    _console().print(runs_table(rows))


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="The baseline run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The run compared with it.")],
    as_json: JsonFlag = False,
) -> None:
    """Compare two runs case by case: ratio B/A with a bootstrap 95% CI, regressions flagged.

    Warns when the machines, library versions, models or depths differ. Exits 1 on a regression.
    """
    from bakeoff.report.compare import compare_tables
    from bakeoff.results.compare import compare as diff
    from bakeoff.results.run import load_run

    result = diff(load_run(run_a), load_run(run_b))
    if as_json:
        _print_json(result.to_dict())
    else:
        console = _console()
        for part in compare_tables(result):
            console.print(part)
    if result.regressions:
        raise typer.Exit(1)


def _progress(console: Any) -> Any:
    from rich.text import Text

    return lambda line: console.print(Text.assemble(("• ", "dim"), line))  # Text: lines quote [shapes]


def main() -> None:
    try:
        app()
    except BakeoffError as exc:
        from rich.console import Console
        from rich.text import Text

        # A Text, not markup: messages quote shapes like [28, 28, 1] that Rich would read as tags.
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            Text("error: ", style="red") + Text(str(exc))
        )
        sys.exit(exc.exit_code)
