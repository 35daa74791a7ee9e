"""Commands that look at models without making a run directory: `zoo`, `show`, `parity`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bakeoff.cli.options import (
    MODEL_HELP,
    Atol,
    Batch,
    GradAtol,
    InputShape,
    JsonFlag,
    KerasRef,
    Seed,
    Threads,
    TorchRef,
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
    model: Annotated[str | None, typer.Argument(help=MODEL_HELP + " Leave out with --torch/--keras.")] = None,
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    code: Annotated[
        bool, typer.Option("--code", help="Print equivalent PyTorch and Keras source code.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a model's layers with shapes, parameters and FLOPs, or (--code) its PyTorch and Keras code.

    With --torch or --keras (and --input-shape) alone, the model is your own: bakeoff derives its spec
    and shows that, or (--code) the code of both twins, so you can keep the one you did not write.
    """
    if torch_ref or keras_ref:
        if model:
            raise UsageError("give either a MODEL or --torch/--keras, not both")
        if torch_ref and keras_ref:
            raise UsageError("show derives one model: give --torch or --keras, not both")
        import tempfile

        shapes, readings = input_shapes(input_shape)
        for reading in readings:
            typer.echo(reading, err=True)
        with tempfile.TemporaryDirectory(prefix="bakeoff-show-") as tmp:
            from bakeoff.twins.own import derive_one

            graph = derive_one(torch_ref, keras_ref, shapes, Path(tmp), None).graph
    elif model:
        from bakeoff.spec.load import resolve

        graph = resolve(model)
    else:
        raise UsageError("give a MODEL (a zoo name or a YAML spec), or --torch/--keras FILE.py:NAME")
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
    torch_ref: TorchRef = None,
    keras_ref: KerasRef = None,
    input_shape: InputShape = None,
    match_defaults: Annotated[
        bool,
        typer.Option(
            "--match-defaults",
            help="For --torch/--keras: before comparing, give the Keras layers the torch layers' "
            "settings where the frameworks' defaults differ (BatchNorm/LayerNorm epsilon and momentum, "
            "GELU's approximation), and list what was changed. Your files are not changed.",
        ),
    ] = False,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="For --torch/--keras: where the full traceback of an error raised in your model's "
            "code is saved (OUT/byo-errors/; the error itself is one line), and, for one model alone, "
            "its derived spec and generated twin (OUT/derived/NAME/).",
        ),
    ] = Path("bakeoff-runs"),
    atol: Atol = 1e-5,
    grad_atol: GradAtol = 1e-4,
    batch: Batch = 8,
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Check that the PyTorch and Keras twins compute the same thing: outputs, every layer, gradients.

    Your own model: --torch and --keras for a pair you wrote; either alone and bakeoff derives the
    model's spec, writes the other framework's twin as code and checks the two.

    Exits 1 when parity fails and names the first layer that diverges.
    """
    from bakeoff.twins import parity as p

    options = p.ParityOptions(atol=atol, grad_atol=grad_atol, batch=batch, seed=seed, threads=threads)
    if torch_ref or keras_ref:
        if model:
            raise UsageError("give either a MODEL or --torch/--keras, not both")
        shapes, readings = input_shapes(input_shape)
        for reading in readings:
            typer.echo(reading, err=True)  # before the check: a wrong reading explains the error it causes
        from bakeoff.twins.own import check_own

        result = check_own(torch_ref, keras_ref, shapes, options, match_defaults, out)
        result.notes[:0] = readings
    elif match_defaults:
        raise UsageError("--match-defaults is for your own pair (--torch/--keras); the zoo's twins match")
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

        screen = console()
        for part in parity_tables(result):
            screen.print(part)
    if not result.passed:
        raise typer.Exit(1)


def input_shapes(texts: list[str] | None) -> tuple[list[tuple[int, ...]], list[str]]:
    """--input-shape as typed (repeatable): the shapes channels-last, and how each 3-D one was read."""
    if not texts:
        raise UsageError("--torch/--keras need --input-shape, e.g. --input-shape 784 or 1,28,28")
    from bakeoff.twins.layout import read_input_shapes

    return read_input_shapes(texts)


COMMANDS = (zoo, show, parity)
