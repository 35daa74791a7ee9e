"""Rich tables for the terminal: the zoo, a model's layers, a parity result."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table
from rich.text import Text

from bakeoff.parity import ParityResult
from bakeoff.spec.flops import count_flops, count_params, node_flops, node_params
from bakeoff.spec.graph import Graph


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}"


def sci(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2e}"


def zoo_rows(graphs: list[Graph]) -> list[dict[str, Any]]:
    return [
        {
            "name": g.spec.name,
            "params": count_params(g),
            "flops_per_sample": count_flops(g),
            "inputs": {i.name: [list(i.shape), i.dtype] for i in g.inputs},
            "task": f"{g.spec.task.num_classes} classes" if g.spec.task.num_classes else "regression",
            "description": g.spec.description,
        }
        for g in graphs
    ]


def zoo_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="bakeoff zoo", title_justify="left")
    for column, justify in (
        ("model", "left"),
        ("params", "right"),
        ("FLOPs/sample", "right"),
        ("input", "left"),
        ("task", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=column != "task")  # type: ignore[arg-type]
    for r in rows:
        inputs = ", ".join(f"{shape} {dtype}" for shape, dtype in r["inputs"].values())
        table.add_row(r["name"], f"{r['params']:,}", human(r["flops_per_sample"]), inputs, r["task"])
    return table


def layers_table(graph: Graph) -> Table:
    table = Table(
        title=f"{graph.spec.name}: {count_params(graph):,} parameters, "
        f"{human(count_flops(graph))} FLOPs per sample",
        title_justify="left",
    )
    for column in ("layer", "type", "inputs", "output shape", "params", "FLOPs"):
        table.add_column(column, justify="right" if column in ("params", "FLOPs") else "left")
    for n in graph.nodes:
        table.add_row(
            n.name,
            n.type,
            ", ".join(n.inputs),
            str(list(n.shape)),
            f"{node_params(n):,}",
            human(node_flops(n)),
        )
    return table


def _lstm_gap(result: ParityResult) -> bool:
    p = result.params
    return "spec" in p and p["torch"] != p["spec"] and any(d.kind == "lstm" for d in result.layers)


def parity_tables(result: ParityResult) -> list[Table | Text]:
    s = result.settings
    header = Text(
        f"parity of {result.model}: {s['precision']}, batch {s['batch']}, {s['threads']} threads, "
        f"tolerance {s['atol']:.0e} for activations, {s['grad_atol']:.0e} for gradients",
        style="bold",
    )
    layers = Table(title="activations, inference mode", title_justify="left")
    for column in ("layer", "type", "shape", "max abs diff", ""):
        layers.add_column(column)
    for d in result.layers:
        mark = "[green]ok[/]" if d.ok else "[red bold]DIVERGES[/]"
        if math.isnan(d.max_abs):
            mark = "[dim]not comparable[/]"
        layers.add_row(d.layer, d.kind, str(d.shape), sci(d.max_abs), mark)

    grads = Table(title="gradients of one training step", title_justify="left")
    for column in ("layer", "parameter", "shape", "max abs diff", ""):
        grads.add_column(column)
    for d in result.gradients:
        grads.add_row(
            d.layer, d.key, str(d.shape), sci(d.max_abs), "[green]ok[/]" if d.ok else "[red bold]DIFFERS[/]"
        )

    params = ", ".join(f"{k} {v:,}" for k, v in result.params.items())
    lines = [
        f"output: max abs diff {sci(result.output_max_abs)}, max rel diff {sci(result.output_max_rel)}",
        f"loss ({s['loss']}): torch {result.loss['torch']:.6f}, keras {result.loss['keras']:.6f}, "
        f"diff {sci(result.loss_abs_diff)}",
        f"trainable parameters: {params}"
        + (" (torch's nn.LSTM keeps two bias vectors where Keras keeps one)" if _lstm_gap(result) else ""),
    ]
    if result.first_divergent:
        lines.append(f"first divergent layer: {result.first_divergent}")
    verdict = Text.from_markup(("[green bold]" if result.passed else "[red bold]") + result.summary() + "[/]")
    return [header, layers, grads, Text("\n".join(lines)), verdict]


def run_summary(outcome: Any) -> list[Table | Text]:
    table = Table(title=f"run {outcome.path.name} ({outcome.seconds:.1f} s)", title_justify="left")
    for column in ("stage", "check", "status", "result"):
        table.add_column(column)
    for r in outcome.records:
        status = "[green]ok[/]" if r["status"] == "ok" else "[red bold]failed[/]"
        table.add_row(r["stage"], r["case"], status, Text(_headline(r)))
    parts: list[Table | Text] = []
    if "parity" in outcome.results:
        parts += parity_tables(outcome.results["parity"])[:2]  # header and per-layer table
    parts.append(table)
    failed = len(outcome.failed)
    verdict = f"{failed} check(s) failed" if failed else "all checks passed"
    parts.append(
        Text.from_markup(
            f"{'[red bold]' if failed else '[green bold]'}{verdict}[/]; "
            f"records in {outcome.path / 'records.jsonl'}"
        )
    )
    return parts


def _headline(record: dict[str, Any]) -> str:
    m = record["metrics"]
    if record["status"] == "failed" and record["message"]:
        return str(record["message"])
    if record["stage"] == "parity" and record["case"] == "outputs":
        return f"max abs diff {sci(m['max_abs'])}, loss diff {sci(m['loss_abs_diff'])}"
    if record["stage"] == "parity" and record["case"] == "layers":
        return f"{len(m['layers'])} layers within tolerance"
    if record["stage"] == "parity" and record["case"] == "gradients":
        return f"{len(m['gradients'])} gradient arrays, max abs diff {sci(m['max_abs'])}"
    return str(record["message"])
