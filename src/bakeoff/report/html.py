"""report.html: one self-contained page (inline CSS and SVG, no script, no network), verdict first, then
every stage's table with its chart beside it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from bakeoff.report import plots, wording
from bakeoff.report.digest import STAGE_TITLES
from bakeoff.report.numbers import sci
from bakeoff.report.verdict import Verdict
from bakeoff.results.run import Run

SECTIONS = {
    "verdict": "Verdict",
    "environment": "Environment and fairness settings",
    "parity": "Parity",
    "training": "Training",
    "pipelines": "Input pipelines",
    "inference": "Inference",
    "artifacts": "Artifacts",
    "failures": "Failed cases",
}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f23;
background:#f6f7f9}
header{background:#1b1f23;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d1d9}nav{padding:6px 28px;background:#fff;border-bottom:1px solid #ddd}
nav a{margin-right:14px;color:#0b5cad;text-decoration:none}main{padding:0 28px 40px;max-width:1500px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;margin:18px 0;padding:4px 18px 14px}
h2{font-size:17px;border-bottom:1px solid #eee;padding-bottom:6px}h3{font-size:14px;margin:14px 0 6px}
.pair{display:grid;grid-template-columns:minmax(320px,1fr) minmax(320px,1fr);gap:18px;align-items:start;
margin:10px 0}.pair svg{width:100%;height:auto}.pair svg.swatch{width:34px;height:12px}
table{border-collapse:collapse;font-size:12.5px;width:100%}th,td{padding:3px 7px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top;overflow-wrap:break-word}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.swatch{vertical-align:middle}
th{background:#f3f4f6}.ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}.muted{color:#6a737d}
.headline{font-size:16px;font-weight:600;margin:10px 0}.winner{font-weight:600}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:6px 10px;margin:8px 0}
@media (max-width:900px){.pair{grid-template-columns:1fr}}
"""


def render(run: Run, digest: dict[str, Any], verdict: Verdict) -> str:
    title = f"bakeoff: {digest['model']} ({digest['run']})"
    env = digest["environment"]
    sub = (
        f"{env.get('cpu', '?')}, {env.get('physical_cores', '?')} cores, "
        f"{'GPU: ' + ', '.join(map(str, env['gpus'])) if env.get('gpus') else 'no GPU'}; "
        f"started {digest.get('started_at') or '?'}"
        + (f", {digest['seconds']:.0f} s" if digest.get("seconds") else "")
        + (f" in {digest['resumed'] + 1} attempts (resumed)" if digest.get("resumed") else "")
        + (" (--quick)" if digest.get("quick") else "")
    )
    body = [
        _verdict(digest, verdict, run.path),
        _environment(digest),
        _parity(digest),
        _training(run, digest),
        _pipelines(digest),
        _inference(digest),
        _artifacts(digest),
        _failures(digest),
    ]
    nav = "".join(f'<a href="#{key}">{escape(name)}</a>' for key, name in SECTIONS.items())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(sub)}</p></header><nav>{nav}</nav>"
        f"<main>{''.join(body)}</main></body></html>\n"
    )


def _section(key: str, *parts: str) -> str:
    return f'<section id="{key}"><h2>{escape(SECTIONS[key])}</h2>{"".join(parts)}</section>'


def _absent(digest: dict[str, Any], stage: str) -> str:
    if stage in digest["missing"]:
        why = "the run stopped before this stage left a record"
    elif stage not in digest["stages"]:
        why = f"not asked for in this run (--stages {','.join(digest['stages'])})"
    else:
        why = "no results recorded"
    return f'<p class="note">{escape(STAGE_TITLES[stage].capitalize())} not measured: {escape(why)}.</p>'


def _table(headers: list[str], rows: Iterable[list[Any]], numeric: Iterable[int] = ()) -> str:
    right = set(numeric)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in right else ''}>{_cell(v)}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Raw(str):
    """Markup built here (a status badge), inserted without escaping."""


def _cell(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    return escape("-" if value is None else str(value))


def _pair(svg: str | None, table: str, caption: str = "") -> str:
    chart = svg or '<p class="muted">no data to plot</p>'
    cap = f'<p class="muted">{escape(caption)}</p>' if caption else ""
    return f'<div class="pair"><div>{chart}</div><div>{table}{cap}</div></div>'


def _status(status: str, text: str = "") -> Raw:
    cls = "ok" if status == "ok" else "bad"
    return Raw(f'<span class="{cls}">{escape(text or status)}</span>')


def _num(value: float | None, fmt: str = ",.0f") -> str | None:
    return None if value is None else format(value, fmt)


def _verdict(digest: dict[str, Any], verdict: Verdict, path: Path) -> str:
    c = verdict.constraints
    # `bakeoff recommend` takes the run directory, as this run was written (not its bare id).
    command = f"bakeoff recommend {shlex.quote(str(path))} --goal ... --deploy ..."
    parts = [
        f'<p class="headline">{escape(verdict.headline)}</p>',
        f'<p class="muted">constraints: goal {escape(c.goal)}, team {escape(c.team)}, deploy '
        f"{escape(c.deploy)}, hardware {escape(c.hardware)} (change them with <code>{escape(command)}</code>)"
        "</p>",
    ]
    if digest["missing"] or not digest["finished"]:
        missing = ", ".join(digest["missing"]) or "none"
        parts.append(
            f'<p class="note">Partial run: it stopped before finishing. Stages with no records: '
            f"{escape(missing)}. `bakeoff run --resume` finishes it.</p>"
        )
    parts += [f'<p class="note">{escape(note)}</p>' for note in verdict.caveats]
    rows = [
        [
            d.title,
            d.weight,
            Raw(f'<span class="winner">{escape(d.winner)}</span>') if d.winner else "no winner",
            d.finding,
            Raw("<br>".join(escape(r) for r in d.reasons)),
        ]
        for d in verdict.dimensions
    ]
    parts.append(_table(["dimension", "weight", "winner", "finding", "measured"], rows, numeric=[1]))
    return _section("verdict", *parts)


def _environment(digest: dict[str, Any]) -> str:
    env = digest["environment"]
    rows = [
        ["CPU", env.get("cpu")],
        [
            "cores (physical / logical / usable)",
            f"{env.get('physical_cores')} / {env.get('logical_cores')} / {env.get('affinity_cores')}",
        ],
        ["memory", f"{env.get('memory_gib')} GiB"],
        ["GPU", ", ".join(map(str, env.get("gpus") or [])) or "none"],
        ["OS, Python", f"{env.get('os')}, Python {env.get('python')}"],
        ["host", env.get("hostname")],
        [
            "model",
            f"{digest['model']}: {digest.get('params') or 0:,} parameters, "
            f"{digest.get('flops_per_sample') or 0:,} FLOPs/sample",
        ],
    ]
    rows += [[name, version] for name, version in (env.get("libraries") or {}).items()]
    settings = digest["settings"]
    # One card per stage, two to a row, so no column runs a page long beside an empty one.
    cards = [f"<div><h3>Machine and libraries</h3>{_table(['', ''], rows)}</div>"]
    for stage, values in settings.items():
        if isinstance(values, dict):
            fair = [[wording.label(k), wording.setting(v)] for k, v in values.items()]
            title = f"Fairness settings: {STAGE_TITLES.get(stage, stage)}, as the stage recorded them"
            cards.append(f"<div><h3>{escape(title)}</h3>{_table(['setting', 'value'], fair)}</div>")
    return _section(
        "environment",
        f"<p>Threads, every framework alike: {escape(wording.setting(settings.get('threads')))}.</p>",
        f'<div class="pair">{"".join(cards)}</div>',
    )


def _parity(digest: dict[str, Any]) -> str:
    p = digest["parity"]
    if not p:
        return _section("parity", _absent(digest, "parity"))
    head = (
        f"<p>{_status(p['status'], 'outputs agree' if p['status'] == 'ok' else 'DIVERGES')}: max abs output "
        f"diff {sci(p.get('max_abs_output'))}, loss diff {sci(p.get('loss_abs_diff'))}, max abs gradient "
        f"diff {sci(p.get('max_abs_gradient'))} (tolerances {p.get('atol')} / {p.get('grad_atol')}); "
        f"first divergent layer: {escape(str(p.get('first_divergent') or 'none'))}.</p>"
    )
    rows = [
        [
            layer["layer"],
            layer.get("kind"),
            layer.get("shape"),
            sci(layer["max_abs"]),
            _status("ok" if layer["ok"] else "failed", "ok" if layer["ok"] else "diverges"),
        ]
        for layer in p.get("layers", [])
    ]
    table = _table(["layer", "type", "shape", "max abs diff", ""], rows, numeric=[3])
    return _section("parity", head, _pair(plots.parity_layers(p), table, "channels-last activations"))


def _training(run: Run, digest: dict[str, Any]) -> str:
    t = digest["train"]
    if not t or not t["modes"]:
        return _section("training", _absent(digest, "train"))
    task = digest.get("task")
    head = (
        f'<p class="muted">{escape(_train_settings(digest["settings"].get("train", {})))}; '
        "step times exclude the first step (compile/trace), reported on its own.</p>"
    )
    speed = [
        [
            m["mode"],
            _status(m["status"]) if m["status"] != "ok" else m["family"],
            _num(m.get("samples_per_s")),
            _num(m.get("step_ms"), ".3f"),
            _num(m.get("step_iqr_ms"), ".3f"),
            _num(m.get("first_step_s"), ".2f"),
            _vs(t, m["mode"]),
        ]
        for m in t["modes"]
    ]
    speed_table = _table(
        ["mode", "side", "samples/s", "step ms", "IQR ms", "first step s", "vs fastest (95% CI)"],
        speed,
        numeric=[2, 3, 4, 5],
    )
    acc = [
        [
            m["mode"],
            _num(wording.score_value(m.get("val_acc"), task), ".3f"),
            _num(m.get("time_to_target_s"), ".2f"),
        ]
        for m in t["modes"]
    ]
    target = t.get("target_val_acc")
    acc_caption = (
        f"target: {wording.target(target, t.get('best_val_acc'), task)}" if target is not None else ""
    )
    util = [
        [
            m["mode"],
            _num(m.get("gflops"), ".2f"),
            _num(m.get("peak_gflops"), ".1f"),
            _num(100 * m["utilization"], ".1f") if m.get("utilization") is not None else None,
        ]
        for m in t["modes"]
    ]
    conv = t.get("convergence")
    conv_text = ""
    if conv:
        words = wording.convergence(conv, task)
        badge = _status("ok" if words.ok else "failed", words.status)
        conv_text = (
            f"<p>Convergence, eager PyTorch vs eager Keras: {escape(words.curves)}; {escape(words.scores)}: "
            f"{badge}</p>"
        )
    overlap = plots.overlapping_losses(run)
    loss_caption = (
        "curves overlap: "
        + "; and ".join(", ".join(group) for group in overlap)
        + " (each drawn as one line)"
        if overlap
        else ""
    )
    return _section(
        "training",
        head,
        "<h3>Throughput per mode</h3>",
        _pair(plots.train_throughput(run), speed_table),
        "<h3>Step-time distributions</h3>",
        _pair(
            plots.train_step_times(run),
            _table(["mode", "step ms", "IQR ms"], [r[:1] + r[3:5] for r in speed]),
        ),
        "<h3>Loss curves and time to accuracy</h3>",
        _pair(
            plots.train_losses(run),
            conv_text or '<p class="muted">one loss per step, same data order</p>',
            loss_caption,
        ),
        _pair(
            plots.time_to_accuracy(run, target, task),
            _table(["mode", wording.score_name(task), "to target s"], acc, numeric=[1, 2]),
            acc_caption,
        ),
        "<h3>Utilization against the measured matmul peak</h3>",
        _pair(
            plots.utilization(t),
            _table(["mode", "GFLOP/s", "peak GFLOP/s", "% of peak"], util, numeric=[1, 2, 3]),
        ),
    )


def _train_settings(s: dict[str, Any]) -> str:
    """The training settings as a line of text: epochs, batch, optimizer, threads, device, data."""
    data = s.get("data") if isinstance(s.get("data"), dict) else {}
    parts = [
        f"{s.get('epochs')} epoch(s)",
        f"batch {s.get('batch_size')}",
        wording.optimizer(s.get("optimizer")),
        f"{s.get('threads')} threads",
        str(s.get("device")),
    ]
    if data:
        parts.append(f"data {data.get('name')} ({data.get('train')} train / {data.get('val')} validation)")
    return ", ".join(parts)


def _vs(t: dict[str, Any], mode: str) -> str:
    if mode == t.get("fastest"):
        return "fastest"
    r = t.get("vs_fastest", {}).get(mode)
    if not r:
        return "-"
    text = f"{r['ratio']:.2f}x slower ({r['low']:.2f}-{r['high']:.2f})"
    return text if r["significant"] else f"no significant difference ({r['low']:.2f}-{r['high']:.2f})"


def _pipelines(digest: dict[str, Any]) -> str:
    p = digest["pipeline"]
    if not p or not p["pipelines"]:
        return _section("pipelines", _absent(digest, "pipeline"))
    rows = [
        [
            r["pipeline"],
            r["framework"],
            _num(r.get("samples_per_s")),
            _num(r.get("iqr")),
            _num(r.get("first_batch_ms"), ".1f"),
            _status(r["status"], r["message"][:80] if r["message"] else ""),
        ]
        for r in p["pipelines"]
    ]
    table = _table(["pipeline", "framework", "samples/s", "IQR", "first batch ms", "status"], rows, [2, 3, 4])
    bound = "".join(
        f"<p>{escape(str(b['pipeline']))}: training step {b['ratio']:.2f}x the in-memory step "
        f"(95% CI {b['low']:.2f}-{b['high']:.2f}): "
        f"{'input-bound' if b['input_bound'] else 'not input-bound'}</p>"
        for b in p["input_bound"]
    )
    return _section("pipelines", _pair(plots.pipelines(p), table + bound))


def _inference(digest: dict[str, Any]) -> str:
    inf = digest["infer"]
    if not inf or not inf["cases"]:
        return _section("inference", _absent(digest, "infer"))
    sizes = sorted({b for c in inf["cases"] for b in c["batches"]})
    styles = plots.latency_styles(inf)  # the table is the chart's legend: one swatch per line
    lat = [
        [_swatch(styles, c["case"]), c["case"], *[_p50(c, b) for b in sizes]]
        if c["status"] == "ok"
        else [None, c["case"], _status("failed", c["message"][:120]), *[None] * (len(sizes) - 1)]
        for c in inf["cases"]
    ]
    lat_table = _table(
        ["line", "runtime / artifact", *[f"batch {b}" for b in sizes]], lat, range(2, len(sizes) + 2)
    )
    top = sizes[-1] if sizes else None
    thr = [
        [
            c["case"],
            _num(c["batches"][top]["samples_per_s"]) if top in c["batches"] else None,
            _num(wording.score_value(c.get("accuracy"), digest.get("task")), ".3f"),
            c.get("gate") or "-",
        ]
        for c in inf["cases"]
        if c["status"] == "ok"
    ]
    cold = [
        [
            c["case"],
            _num((c.get("load_s") or 0) * 1e3, ".1f"),
            _num((c.get("first_call_s") or 0) * 1e3, ".2f"),
            _num(c.get("rss_peak_mb"), ".0f"),
        ]
        for c in inf["cases"]
        if c["status"] == "ok"
    ]
    fastest = "".join(
        f"<p>{escape(device)}, batch {escape(size)}: fastest <b>{escape(info['fastest'])}</b></p>"
        for device, by_size in inf.get("by_device", {}).items()
        for size, info in by_size.items()
    )
    return _section(
        "inference",
        "<h3>Latency vs batch size</h3>",
        _pair(
            plots.latency_by_batch(inf),
            lat_table,
            "p50 ms / p99 ms (p99 from 100+ calls); host copies included. Lines: colour per runtime, "
            "solid and filled for artifacts from PyTorch, dashed and hollow for those from TensorFlow",
        ),
        "<h3>Throughput</h3>",
        _pair(
            plots.throughput(inf),
            _table(["runtime / artifact", f"samples/s at {top}", _quality_name(digest), "gate"], thr, [1, 2])
            + fastest,
        ),
        "<h3>Cold start</h3>",
        _pair(
            plots.cold_start(inf),
            _table(["runtime / artifact", "load ms", "first call ms", "peak RSS MB"], cold, [1, 2, 3]),
        ),
    )


def _swatch(styles: dict[str, tuple[str, str, str]], case: str) -> Raw | None:
    return Raw(plots.swatch(styles[case])) if case in styles else None


def _p50(case: dict[str, Any], size: int) -> str | None:
    b = case["batches"].get(size)
    if not b:
        return None
    return f"{b['p50_ms']:.3g}" + (f" / {b['p99_ms']:.3g}" if b.get("p99_ms") is not None else "")


def _quality_name(digest: dict[str, Any]) -> str:
    """The column a model's quality goes in: accuracy, or for regression the MSE (records keep -MSE)."""
    return "val MSE" if wording.regression(digest.get("task")) else "accuracy"


def _artifacts(digest: dict[str, Any]) -> str:
    e = digest["export"]
    if not e or not e["artifacts"]:
        return _section("artifacts", _absent(digest, "export"))
    task = digest.get("task")
    rows = [
        [
            number,
            a["artifact"],
            a.get("format"),
            a.get("precision"),
            _num(a["size_bytes"] / 1024 if a.get("size_bytes") else None, ",.0f"),
            sci(a.get("max_abs_diff")) if a["status"] == "ok" else None,
            _num(wording.score_value(a.get("accuracy"), task), ".3f"),
            _num(100 * a["relative_accuracy"], ".2f") if a.get("relative_accuracy") else None,
            _status(
                "ok" if a["status"] == "ok" and a.get("gate") != "fail" else "failed",
                (a.get("gate") or "") if a["status"] == "ok" else a["message"][:100],
            ),
        ]
        for number, a in enumerate(e["artifacts"], 1)
    ]
    relative = "MSE, % of fp32" if wording.regression(task) else "% of fp32"
    headers = ["#", "artifact", "format", "precision", "KB", "max abs diff", _quality_name(digest), relative]
    table = _table([*headers, "gate"], rows, [0, 4, 6, 7])
    caption = "each verified against its source model; # numbers the points of the chart"
    return _section("artifacts", _pair(plots.artifacts(e, task), table, caption))


def _failures(digest: dict[str, Any]) -> str:
    failed = digest["failed"]
    parts = []
    if digest["missing"]:
        parts.append(f'<p class="note">Not reached (no records): {escape(", ".join(digest["missing"]))}.</p>')
    if not failed:
        parts.append('<p class="ok">No case failed.</p>')
    else:
        parts.append(
            _table(
                ["stage", "case", "worker", "reason"],
                [[f["stage"], f["case"], f["framework"], f["message"]] for f in failed],
            )
        )
    return _section("failures", *parts)
