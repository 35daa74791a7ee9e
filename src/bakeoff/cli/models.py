"""Commands that look at models without making a run directory: `zoo`, `show`, `parity`."""

from __future__ import annotations

from typing import Annotated

import typer

from bakeoff.cli.options import (
    MODEL_HELP,
    Atol,
    Batch,
    GradAtol,
    JsonFlag,
    Model,
    Seed,
    Threads,
    parse_shape,
)
from bakeoff.cli.output import console, print_json
from bakeoff.errors import UsageError


def zoo(as_json: JsonFlag = False) -> None:
    """List the built-in models with parameters, FLOPs per sample and input shape."""
    from bakeoff.report.terminal import zoo_rows, zoo_table
    from bakeoff.spec.load import resolve, zoo_names

    rows = zoo_rows([resolve(name) for name in zoo_names()])
    if as_json:
        print_json(rows)
    else:
        console().print(zoo_table(rows))


def show(
    model: Model,
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
            print_json({"torch": torch_code(graph), "keras": keras_code(graph)})
            return
        typer.echo(f"# ---- PyTorch ({graph.spec.name}) ----\n{torch_code(graph)}")
        typer.echo(f"# ---- Keras ({graph.spec.name}) ----\n{keras_code(graph)}")
        return
    if as_json:
        from bakeoff.spec.flops import describe

        print_json(describe(graph))
        return
    from bakeoff.report.terminal import layers_table

    console().print(layers_table(graph))


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
        if as_json:
            result = p.check(graph, options)
        else:
            with console().status(f"parity of {graph.spec.name}: one worker per framework"):
                result = p.check(graph, options)
    if as_json:
        print_json(result.to_dict())
    else:
        from bakeoff.report.terminal import parity_tables

        out = console()
        for part in parity_tables(result):
            out.print(part)
    if not result.passed:
        raise typer.Exit(1)


COMMANDS = (zoo, show, parity)
