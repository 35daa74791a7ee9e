"""The options of the `bakeoff` commands, each written once, and the parsing of their text values.

An option that more than one command takes, or whose default another command reuses, is an `Annotated`
alias here, so its flag, help and checks are the same everywhere; each command gives it its default
(`epochs: Epochs = 3`). An option of a single command is written in that command. The parsers turn
comma-separated text into lists and raise UsageError (one line, exit 2) for text they cannot read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bakeoff.errors import UsageError
from bakeoff.twins.layout import parse_shape as parse_shape  # --input-shape, parsed in the library

MODEL_HELP = "A zoo model name (see `bakeoff zoo`) or a path to a YAML spec."
Model = Annotated[str, typer.Argument(help=MODEL_HELP)]
RunDir = Annotated[Path, typer.Argument(help="A run directory, e.g. bakeoff-runs/20261125-101500-simplenet.")]

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable JSON result instead of tables.")
]
CsvFlag = Annotated[
    bool,
    typer.Option("--csv", help="Print every row as CSV (nested fields as dotted columns) instead of tables."),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the canonical weights and the batch.")]
Threads = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="Threads for every framework alike [default: physical cores]."),
]
Out = Annotated[Path, typer.Option("--out", help="Where run directories are made.")]

# a user's own model (parity, show, run)
TorchRef = Annotated[
    str | None,
    typer.Option("--torch", help="Your own torch model: FILE.py:NAME (a module, class or factory)."),
]
KerasRef = Annotated[
    str | None, typer.Option("--keras", help="Your own Keras model: FILE.py:NAME (a model or factory).")
]
InputShape = Annotated[
    list[str] | None,
    typer.Option(
        "--input-shape",
        help="Per-sample input shape for --torch/--keras, as you would give it to PyTorch: 784, 10,8 "
        "(a sequence), 1,28,28 (an image, channels-first). An image channels-last (28,28,1) is "
        "read as such; a 3-D shape with 1 or 3 leading channels is read as channels-first, and "
        "bakeoff says which reading it took. Repeat for several inputs.",
    ),
]

# parity
Atol = Annotated[
    float, typer.Option("--atol", help="Max abs difference allowed for outputs and activations.")
]
GradAtol = Annotated[
    float, typer.Option("--grad-atol", help="Max abs difference allowed for gradients and loss.")
]
Batch = Annotated[int, typer.Option("--batch", min=1, help="Samples in the parity batch.")]

# training
ALL_MODES = "torch-eager,torch-compile,keras-eager,keras-graph,keras-xla"
Modes = Annotated[
    str,
    typer.Option(
        "--modes",
        help="Comma-separated training modes: torch-eager, torch-compile (torch.compile), "
        "keras-eager (fit run_eagerly), keras-graph (fit as tf.function), keras-xla (jit_compile); "
        "Keras 3 on other backends: keras-torch-eager, keras-torch-compile, keras-jax-eager, keras-jax-jit "
        "(--backends adds them).",
    ),
]
Backends = Annotated[
    str,
    typer.Option(
        "--backends",
        help="Also measure the Keras twin on other Keras 3 backends: torch, jax or torch,jax. Adds the "
        "backends parity stage, their training modes (eager and jit_compile) and inference runtimes "
        "(keras-tf, keras-torch, keras-jax on the keras-twin artifact). JAX needs "
        "pip install 'bakeoff[backends]'.",
    ),
]
Epochs = Annotated[int, typer.Option("--epochs", min=1, help="Training epochs per mode.")]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, help="Training batch size, the same in every mode.")
]
Lr = Annotated[
    float,
    typer.Option(
        "--lr",
        help="Adam learning rate (one update rule in both: Keras' epsilon-hat; betas 0.9/0.999, eps 1e-7).",
    ),
]
Device = Annotated[str, typer.Option("--device", help="cpu or cuda (CUDA needs a GPU and GPU builds).")]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="mnist, synthetic, or FILE.npz with arrays x (x0, x1, ... for several inputs) and y "
        "[default: mnist when the model takes 28x28 digits, else synthetic].",
    ),
]
CompileMode = Annotated[
    str, typer.Option("--compile-mode", help="torch.compile mode: default, reduce-overhead, max-autotune.")
]

# export and inference
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
        "torch-onnx-tf and keras-onnx-torch are `bakeoff convert`'s, not in 'all'; keras-twin (the Keras "
        "twin's weights, for Keras on each backend) comes with --backends.",
    ),
]
Runtimes = Annotated[
    str,
    typer.Option(
        "--runtimes",
        help="Comma-separated runtimes, or 'all': torch-eager, torch-compile, exported-program, torchscript, "
        "tf-savedmodel, tf-xla, onnxruntime, litert, onnx2torch (runs keras-onnx-torch); on a GPU also "
        "torch-eager-cuda, torch-compile-cuda, onnxruntime-cuda, onnxruntime-tensorrt. Not in 'all': "
        "keras-tf, keras-torch, keras-jax (the Keras twin on each Keras 3 backend; --backends adds them).",
    ),
]
BatchSizes = Annotated[str, typer.Option("--batch-sizes", help="Comma-separated inference batch sizes.")]
Opset = Annotated[int, typer.Option("--opset", help="ONNX opset of both ONNX exporters.")]
FitEpochs = Annotated[int, typer.Option("--epochs", min=1, help="Epochs of training before export.")]
Servers = Annotated[
    str,
    typer.Option(
        "--servers",
        help="Comma-separated model servers for the serve stage, or 'all': tfserving "
        "(tensorflow_model_server "
        "when installed, else bakeoff's TF Serving API server), triton, torchserve, ray.",
    ),
]
SloMs = Annotated[
    float, typer.Option("--slo-ms", min=0.001, help="p99 latency bound (ms) for throughput at the SLO.")
]
Duration = Annotated[
    float | None,
    typer.Option("--duration", min=0.1, help="Seconds per serve load point [default: 5; 1 with --quick]."),
]
TfServingBin = Annotated[
    str | None,
    typer.Option(
        "--tfserving-bin",
        help="Path to the real tensorflow_model_server [default: on PATH, else bakeoff's own server].",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Run Ray Serve (and the distributed stage's ray-torch/ray-tf launchers) on an existing Ray "
        "cluster: 'auto' (`ray start --head` on this machine), ray://HEAD:10001 (Serve) or HEAD:6379 "
        "[default: $BAKEOFF_RAY_ADDRESS, else a local cluster of bakeoff's own].",
    ),
]

# the verdict's constraints (run, report, recommend)
Goal = Annotated[
    str | None,
    typer.Option(
        "--goal",
        help="research, production or scale-out: weighs training and code, serving and deploying, or "
        "training spread over workers (the distributed stage).",
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
MARGIN_HELP = (
    "Practical margin: a side wins a dimension only when the whole 95% CI of its advantage lies outside "
    "±margin (0.05: 5%)."
)
Margin = Annotated[float, typer.Option("--margin", min=0.0, max=0.99, help=MARGIN_HELP)]
RunMargin = Annotated[
    float | None,
    typer.Option("--margin", min=0.0, max=0.99, help=MARGIN_HELP + " [default: the run's own]"),
]
Config = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file with goal/team/deploy/hardware; flags override it."),
]


def given_flag(ctx: typer.Context, name: str) -> bool:
    """The user typed this option (or set it in the environment), rather than taking its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def constraint_flags(
    goal: str | None, team: str | None, deploy: str | None, hardware: str | None
) -> dict[str, str | None]:
    """The constraint flags by name, for bakeoff.report.constraints; None where not given."""
    return {"goal": goal, "team": team, "deploy": deploy, "hardware": hardware}


def split(text: str) -> list[str]:
    """Comma-separated names, blanks dropped: 'a, b,' -> ['a', 'b']."""
    return [part.strip() for part in text.split(",") if part.strip()]


def all_or(text: str) -> list[str] | None:
    """None for 'all' (every choice), else the comma-separated names."""
    return None if text.strip() == "all" else split(text)


def parse_batch_sizes(text: str) -> list[int]:
    try:
        return [int(b) for b in split(text)]
    except ValueError as exc:
        raise UsageError(f"--batch-sizes {text!r}: expected integers like 1,8,64,256") from exc
