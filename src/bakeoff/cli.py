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
        from bakeoff.spec.flops import count_flops, count_params, node_flops, node_params

        _print_json(
            {
                "spec": graph.spec.model_dump(mode="json"),
                "params": count_params(graph),
                "flops_per_sample": count_flops(graph),
                "layers": [
                    {
                        "name": n.name,
                        "type": n.type,
                        "inputs": n.inputs,
                        "shape": n.shape,
                        "params": node_params(n),
                        "flops": node_flops(n),
                    }
                    for n in graph.nodes
                ],
            }
        )
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
    from bakeoff import parity as p

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


@app.command()
def run(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)] = "simplenet",
    out: Annotated[Path, typer.Option("--out", help="Where run directories are made.")] = Path(
        "bakeoff-runs"
    ),
    stages: Annotated[
        str, typer.Option("--stages", help="Comma-separated stages to run, in order.")
    ] = "parity",
    atol: Atol = 1e-5,
    grad_atol: GradAtol = 1e-4,
    batch: Batch = 8,
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """The main job: build the twins, run every stage, write a run directory with run.json and records.jsonl.

    Exits 1 when any check fails; every finished check is already in records.jsonl.
    """
    from bakeoff.runner import run_stages

    console = _console()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if not as_json:
            console.print(f"[dim]•[/] {line}")

    options = {
        "threads": threads,
        "seed": seed,
        "parity": {"atol": atol, "grad_atol": grad_atol, "batch": batch},
    }
    outcome = run_stages(model, out, [s.strip() for s in stages.split(",") if s.strip()], options, progress)
    if as_json:
        _print_json({"run_dir": str(outcome.path), "records": outcome.records})
    else:
        from bakeoff.report.terminal import run_summary

        for part in run_summary(outcome):
            console.print(part)
    if outcome.failed:
        raise typer.Exit(1)


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
