"""Rich tables for the terminal: the zoo, a model's layers, a parity result."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table
from rich.text import Text

from bakeoff.measure.stats import P99_MIN_SAMPLES, Ratio
from bakeoff.report import wording
from bakeoff.report.debug import tables as debug_tables
from bakeoff.report.numbers import human, sci
from bakeoff.spec.flops import count_flops, count_params, node_flops, node_params
from bakeoff.spec.graph import Graph
from bakeoff.twins.parity import ParityResult


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
        f"trainable parameters: {params}",
    ]
    if result.first_divergent:
        lines.append(f"first divergent layer: {result.first_divergent}")
    for cause in result.causes:
        lines.append(f"likely cause ({cause.layer}): {cause.text}")
        if cause.fix:
            lines.append(f"  fix: {cause.fix}")
    lines += [f"note: {note}" for note in result.notes]
    verdict = Text(result.summary(with_cause=False), style="green bold" if result.passed else "red bold")
    return [header, layers, grads, Text("\n".join(lines)), verdict]


def run_summary(outcome: Any) -> list[Table | Text]:
    table = Table(title=f"run {outcome.path.name} ({outcome.seconds:.1f} s)", title_justify="left")
    for column in ("stage", "check", "status", "result"):
        table.add_column(column)
    for r in outcome.latest:
        if (
            r["stage"] in ("export", "infer", "serve")
            and r["status"] == "ok"
            and r["case"] not in ("fit", "summary")
        ):
            continue  # one row per artifact and runtime is in their own tables above
        if r["stage"] == "debug" and r["status"] == "ok":
            continue  # the debug tables above hold one row per case
        status = "[green]ok[/]" if r["status"] == "ok" else "[red bold]failed[/]"
        table.add_row(r["stage"], r["case"], status, Text(record_line(r)))
    parts: list[Table | Text] = []
    if "parity" in outcome.results:
        parts += parity_tables(outcome.results["parity"])[:2]  # header and per-layer table
    trained = [r for r in outcome.latest if r["stage"] == "train"]
    if any(r["case"] not in ("peak", "summary") and r["status"] == "ok" for r in trained):
        parts += train_tables(trained)
    piped = [r for r in outcome.latest if r["stage"] == "pipeline" and r["status"] == "ok"]
    if piped:
        parts += pipeline_tables(piped)
    parts += export_tables(outcome.latest) + infer_tables(outcome.latest) + serve_tables(outcome.latest)
    parts += debug_tables(outcome.latest)
    if table.row_count:
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


def serve_tables(records: list[dict[str, Any]]) -> list[Table | Text]:
    """Throughput at the p99 SLO per server and batching setting, what ran, and the generator's ceiling."""
    from bakeoff.report import serving

    rows = [r for r in records if r["stage"] == "serve" and r["case"].endswith("/slo")]
    if not rows:
        return []
    slo = rows[0]["settings"].get("slo_ms")
    table = Table(title=f"serving: throughput at p99 <= {slo} ms (open loop, Poisson)", title_justify="left")
    for column in ("server", "what ran", "throughput at SLO"):
        table.add_column(column, overflow="fold")
    table.add_column("cold start s", justify="right")
    table.add_column("bad input (status)")
    ceiling = None
    for r in rows:
        m = r["metrics"]
        ceiling = (m.get("generator") or {}).get("ceiling_rps", ceiling)
        row = {
            "status": r["status"],
            "message": r["message"],
            "slo_ms": slo,
            "slo_met": m.get("slo_met"),
            "slo_throughput_rps": m.get("slo_throughput_rps"),
            "generator_bound": m.get("generator_bound"),
        }
        bad = m.get("bad_inputs") or {}
        table.add_row(
            r["case"].removesuffix("/slo"),
            Text(r["settings"].get("implementation") or "-"),
            Text(serving.throughput_text(row, ceiling) if r["status"] == "ok" else r["message"][:70]),
            f"{m['cold_start_s']:.1f}" if m.get("cold_start_s") else "-",
            " ".join(str((bad.get(k) or {}).get("status", "-")) for k in serving.BAD_INPUTS) if bad else "-",
        )
    parts: list[Table | Text] = [table]
    if ceiling:
        parts.append(Text(f"load generator ceiling (no-op server): {ceiling:,.0f} req/s"))
    return parts


def record_line(record: dict[str, Any]) -> str:
    m = record["metrics"]
    if record["status"] == "failed" and record["message"]:
        return str(record["message"])
    if record["stage"] == "parity" and record["case"] == "outputs":
        return f"max abs diff {sci(m['max_abs'])}, loss diff {sci(m['loss_abs_diff'])}"
    if record["stage"] == "parity" and record["case"] == "layers":
        return f"{len(m['layers'])} layers within tolerance"
    if record["stage"] == "pipeline" and "samples_per_s" in m:
        return f"{m['samples_per_s']:,.0f} samples/s"
    if record["stage"] == "parity" and record["case"] == "gradients":
        return f"{len(m['gradients'])} gradient arrays, max abs diff {sci(m['max_abs'])}"
    return str(record["message"])


def _ms3(seconds: float) -> str:
    """Milliseconds to 3 significant digits: inference latencies span 10 us to seconds."""
    return f"{seconds * 1000:.3g}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}"


def train_tables(records: list[dict[str, Any]]) -> list[Table | Text]:
    """Per training mode: speed with spread and compile time; then accuracy, time to accuracy, resources."""
    summary = next((r for r in records if r["case"] == "summary"), None)
    reached = summary["metrics"]["time_to_target_s"] if summary else {}
    modes = [r for r in records if r["case"] not in ("peak", "summary") and r["status"] == "ok"]
    s = modes[0]["settings"]
    task = s.get("task")  # recorded since the report names regression scores as MSE; older: classification
    header = Text(
        f"training: {s['epochs']} epoch(s), batch {s['batch_size']}, Adam lr {s['lr']:g}, "
        f"{s['threads']} threads, {s['device']}, {s['data']['name']} "
        f"({s['data']['train']} train / {s['data']['val']} val)",
        style="bold",
    )
    speed = Table(title="speed (step times exclude the first step: compile/trace)", title_justify="left")
    for column in ("mode", "first step s", "step ms", "IQR ms", "samples /s", "GFLOP /s", "of ceiling"):
        speed.add_column(column, justify="left" if column == "mode" else "right", no_wrap=column == "mode")
    gpu = s["device"] == "cuda"
    results = Table(title="results and resources", title_justify="left")
    columns = [
        "mode",
        wording.score_name(task),
        "train MSE" if wording.regression(task) else "train acc",
        "to target s",
        "CPU %",
        "RSS MB (at start)",
        *(["GPU %", "GPU MB"] if gpu else []),
    ]
    for column in columns:
        results.add_column(column, justify="left" if column == "mode" else "right", no_wrap=column == "mode")
    for r in modes:
        m = r["metrics"]
        step, res = m["step_s"], m.get("resources") or {}
        hit = reached.get(r["case"])
        speed.add_row(
            r["case"],
            f"{m['first_step_s']:.2f}",
            _ms(step["median"]),
            _ms(step["iqr"]) + (" [yellow]noisy[/]" if step["noisy"] else ""),
            f"{m['samples_per_s']['median']:,.0f}",
            f"{m['gflops']:.2f}",
            f"{100 * m['utilization']:.1f}%" if m.get("utilization") else "-",
        )
        gpu_cells = [
            f"{res.get('gpu_util_mean') or 0:.0f}",
            f"{(res.get('gpu_mem_peak_bytes') or 0) / 2**20:,.0f}",
        ]
        results.add_row(
            r["case"],
            _acc(wording.score_value(m["val_acc"], task)),
            _acc(wording.score_value(m["train_acc"], task)),
            "-" if hit is None else f"{hit:.2f}",
            f"{res.get('cpu_percent_mean', 0):.0f}",
            # Modes share a long-lived worker: the RSS it started at is what earlier modes left.
            f"{res.get('rss_peak_bytes', 0) / 2**20:,.0f} ({res.get('rss_start_bytes', 0) / 2**20:,.0f})",
            *(gpu_cells if gpu else []),
        )
    parts: list[Table | Text] = [header, speed, results]
    if summary:
        parts.append(Text("\n".join(_summary_lines(summary["metrics"], task))))
    return parts


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"  # None: a diverged model's NaN, stored as null


def _summary_lines(s: dict[str, Any], task: str | None = None) -> list[str]:
    lines = [
        f"time to target: {wording.target(s.get('target_val_acc'), s.get('best_val_acc'), task)}, "
        "training time with compile, without evaluation"
    ]
    for mode, ratio in s["vs_fastest"].items():
        fields = {k: ratio[k] for k in ("ratio", "low", "high", "level", "n_boot")}
        lines.append(f"{mode} vs {s['fastest']} (step time): {Ratio(**fields).verdict(mode, s['fastest'])}")
    conv = s.get("convergence")
    if conv:
        lines.append(f"convergence, eager torch vs eager Keras: {wording.convergence(conv, task).sentence}")
    return lines


def pipeline_tables(records: list[dict[str, Any]]) -> list[Table | Text]:
    """Samples/s per input-pipeline variant, then the input-bound verdict per framework."""
    cases = [r for r in records if "samples_per_s_stats" in r["metrics"]]
    if not cases:
        return []
    s = cases[0]["settings"]
    table = Table(
        title=f"input pipelines: PNG decode + pad/crop/flip/normalize, batch {s['batch']}, "
        f"{s['threads']} threads, {s['epochs']} timed passes of {s['samples']} samples",
        title_justify="left",
    )
    for column in ("pipeline", "samples/s", "IQR", "first batch ms", "CPU %", "RSS MB"):
        table.add_column(
            column, justify="left" if column == "pipeline" else "right", no_wrap=column == "pipeline"
        )
    for r in cases:
        m = r["metrics"]
        stats = m["samples_per_s_stats"]
        noisy = " [yellow]noisy[/]" if stats["noisy"] else ""
        table.add_row(
            r["case"],
            f"{stats['median']:,.0f}",
            f"{stats['iqr']:,.0f}{noisy}",
            f"{m['first_batch_s'] * 1000:.1f}",
            f"{m['cpu_percent_mean']:.0f}",
            f"{m['peak_rss_mb']:,.0f}",
        )
    verdicts = [r["message"] for r in records if r["case"] == "input-bound"]
    return [table, Text("\n".join(f"input-bound? {v}" for v in verdicts))] if verdicts else [table]


def _left_first(table: Table, columns: list[str]) -> None:
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)


def _score(q: dict[str, Any]) -> str:
    """Accuracy for classification; for regression the stored score is -MSE, shown as MSE."""
    if "top1_agreement" in q or q.get("accuracy") is None:
        return _acc(q.get("accuracy"))
    return f"MSE {-q['accuracy']:.4g}"


def _delta(q: dict[str, Any]) -> str:
    """Change against the fp32 source: accuracy points, or for regression the MSE's relative change."""
    acc, ref = q.get("accuracy"), q.get("reference_accuracy")
    if acc is None or ref is None:
        return "n/a"
    if "top1_agreement" in q:
        return f"{100 * (acc - ref):+.2f} pts"
    return f"MSE {100 * (acc - ref) / ref:+.1f}%" if ref else "n/a"


def _rss(res: dict[str, Any]) -> str:
    """Peak RSS of the case, and the worker's RSS when it began: cases of a framework share a worker."""
    return f"{res.get('rss_peak_bytes', 0) / 2**20:,.0f} ({res.get('rss_start_bytes', 0) / 2**20:,.0f})"


def _gate(gate: str | None) -> str:
    return {"pass": "[green]pass[/]", "fail": "[red bold]FLAGGED[/]"}.get(gate or "", gate or "-")


def export_tables(records: list[dict[str, Any]]) -> list[Table | Text]:
    """One row per artifact: how big, how long to make, how close to its source, the int8 gate."""
    rows = [r for r in records if r["stage"] == "export" and r["case"] not in ("fit", "reference", "stage")]
    if not rows:
        return []
    table = Table(
        title="artifacts (verified against their source model on the validation set)", title_justify="left"
    )
    _left_first(
        table, ["artifact", "precision", "size KB", "export s", "max abs diff", "accuracy", "of fp32", "gate"]
    )
    for r in rows:
        m = r["metrics"]
        v = m.get("verification") or {}
        if r["status"] != "ok" and not v:
            table.add_row(r["case"], "-", "-", "-", Text(r["message"][:60], style="red"), "", "", "")
            continue
        relative = v.get("relative_accuracy")
        table.add_row(
            r["case"],
            m.get("precision", "-"),
            f"{m.get('size_bytes', 0) / 1024:,.0f}",
            f"{m.get('export_seconds', 0):.2f}",
            sci(v.get("max_abs_diff", math.nan)),
            _score(v),
            "-" if relative is None else f"{100 * relative:.2f}%",
            _gate(m.get("gate")) if r["status"] == "ok" else "[red bold]WRONG[/]",
        )
    return [table]


def infer_tables(records: list[dict[str, Any]]) -> list[Table | Text]:
    """Latency per batch size (p50 / p99), then throughput, cold start, accuracy delta and memory."""
    rows = [r for r in records if r["stage"] == "infer" and r["status"] == "ok" and "batches" in r["metrics"]]
    if not rows:
        return []
    s = rows[0]["settings"]
    sizes = [str(b) for b in s["batch_sizes"]]
    latency = Table(
        title=f"inference latency ms, p50 / p99 by batch size ({s['threads']} threads; host<->device copies "
        "included; p99 needs 100 calls)",
        title_justify="left",
    )
    _left_first(latency, ["runtime / artifact", *[f"batch {b}" for b in sizes]])
    largest = sizes[-1]
    rest = Table(title=f"throughput at batch {largest}, cold start, accuracy", title_justify="left")
    _left_first(
        rest,
        [
            "runtime / artifact",
            "samples/s",
            "load ms",
            "1st call ms",
            "accuracy",
            "Δ vs fp32",
            "gate",
            "RSS MB",
        ],
    )
    for r in rows:
        m = r["metrics"]
        cells = []
        for b in sizes:
            st = m["batches"].get(b, {}).get("stats")
            p99 = _ms3(st["p99"]) if st and st["n"] >= P99_MIN_SAMPLES else "-"
            cells.append(f"{_ms3(st['median'])} / {p99}" if st else "-")
        latency.add_row(r["case"], *cells)
        q = m["quality"]
        big = m["batches"].get(largest, {})
        rest.add_row(
            r["case"],
            f"{big.get('samples_per_s', 0):,.0f}",
            _ms3(m["load_s"]),
            _ms3(m["first_inference_s"]),
            _score(q),
            _delta(q),
            _gate(m.get("gate")) if m.get("precision") != "fp32" else "-",
            _rss(m.get("resources") or {}),
        )
    parts: list[Table | Text] = [latency, rest]
    summary = next((r for r in records if r["stage"] == "infer" and r["case"] == "summary"), None)
    if summary:
        lines = []
        for device, sizes in summary["metrics"]["by_device"].items():
            for size, info in sizes.items():
                line = f"{device}, batch {size}: fastest {info['fastest']}"
                ratios = info["vs_fastest"]
                if ratios:  # the runner-up says how clear the win is; every ratio is in the record
                    case, ratio = min(ratios.items(), key=lambda kv: kv[1]["ratio"])
                    fields = {k: ratio[k] for k in ("ratio", "low", "high", "level", "n_boot")}
                    line += f"; runner-up {case}: {Ratio(**fields).verdict(case, info['fastest'])}"
                lines.append(line)
        parts.append(Text("\n".join(lines)))
    return parts


def conversion_lines(records: list[dict[str, Any]], wanted: list[str]) -> Text:
    """One verdict per direction of `bakeoff convert`, with the difference it was judged on."""
    latest = {r["case"]: r for r in records if r["stage"] == "export"}
    names = {
        "torch-onnx-tf": "PyTorch -> ONNX -> TensorFlow (onnx2tf)",
        "keras-onnx-torch": "Keras -> ONNX -> PyTorch (onnx2torch)",
    }
    lines = Text()
    for case in wanted:
        r = latest.get(case)
        if r is None:
            continue
        v = r["metrics"].get("verification") or {}
        if r["status"] == "ok":
            agree = v.get("top1_agreement")
            lines.append(
                f"{names[case]}: parity ok, max abs diff {sci(v['max_abs_diff'])} against the original",
                style="green",
            )
            if agree is not None:
                lines.append(f", top-1 agreement {100 * agree:.2f}%", style="green")
        else:
            lines.append(f"{names[case]}: FAILED: {r['message']}", style="red bold")
        lines.append("\n")
    return lines


def verdict_parts(verdict: Any) -> list[Table | Text]:
    """The recommendation for the terminal: headline, caveats, then one row per dimension with the
    measured numbers behind it."""
    c = verdict.constraints
    parts: list[Table | Text] = [
        Text(f"constraints: goal {c.goal}, team {c.team}, deploy {c.deploy}, hardware {c.hardware}", "dim"),
        Text(verdict.headline, "bold"),
    ]
    parts += [Text(f"note: {note}", "yellow") for note in verdict.caveats]
    table = Table(title="verdict per dimension", title_justify="left", show_lines=True)
    for column in ("dimension", "weight", "winner", "measured"):
        table.add_column(column, justify="right" if column == "weight" else "left")
    for d in verdict.dimensions:
        table.add_row(
            d.title, str(d.weight), d.winner or "no winner", Text("\n".join([d.finding, *d.reasons]))
        )
    parts.append(table)
    return parts
