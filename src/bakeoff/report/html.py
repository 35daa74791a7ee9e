"""report.html: one self-contained page (inline CSS and SVG, no script, no network), verdict first, then
every stage's table with its chart beside it.
"""

from __future__ import annotations

import shlex
from html import escape
from pathlib import Path
from typing import Any

from bakeoff.measure.guard import guard_lines
from bakeoff.report import markup, plots, wording
from bakeoff.report.debug import html_section as debug_section
from bakeoff.report.digest import FAMILY, STAGE_TITLES
from bakeoff.report.html_sections import (
    artifacts,
    distributed,
    failures,
    inference,
    keras_backends,
    pipelines,
    serving,
)
from bakeoff.report.markup import SECTIONS
from bakeoff.report.numbers import sci
from bakeoff.report.verdict import Verdict
from bakeoff.results.run import Run

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


def render(run: Run, digest: dict[str, Any], verdict: Verdict, claims: str = "") -> str:
    """`claims`: the claims section, already rendered (bakeoff.claims.render), placed under the verdict."""
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
        claims,
        _environment(digest),
        _parity(digest),
        keras_backends(digest),
        _training(run, digest),
        pipelines(digest),
        inference(digest),
        debug_section(digest["debug"], markup.absent(digest, "debug")),
        artifacts(digest),
        serving(digest),
        distributed(digest),
        failures(digest),
    ]
    nav = "".join(f'<a href="#{key}">{escape(name)}</a>' for key, name in SECTIONS.items())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(sub)}</p></header><nav>{nav}</nav>"
        f"<main>{''.join(body)}</main></body></html>\n"
    )


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
            markup.Raw(f'<span class="winner">{escape(d.winner)}</span>') if d.winner else "no winner",
            d.finding,
            markup.Raw("<br>".join(escape(r) for r in d.reasons)),
        ]
        for d in verdict.dimensions
    ]
    parts.append(markup.table(["dimension", "weight", "winner", "finding", "measured"], rows, numeric=[1]))
    return markup.section("verdict", *parts)


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
    rows += [[f"machine during {stage}", line] for stage, line in guard_lines(digest.get("machine")).items()]
    settings = digest["settings"]
    # One card per stage, two to a row, so no column runs a page long beside an empty one.
    cards = [f"<div><h3>Machine and libraries</h3>{markup.table(['', ''], rows)}</div>"]
    for stage, values in settings.items():
        if isinstance(values, dict):
            fair = [[wording.label(k), wording.setting(v)] for k, v in values.items()]
            title = f"Fairness settings: {STAGE_TITLES.get(stage, stage)}, as the stage recorded them"
            cards.append(f"<div><h3>{escape(title)}</h3>{markup.table(['setting', 'value'], fair)}</div>")
    return markup.section(
        "environment",
        f"<p>Threads, every framework alike: {escape(wording.setting(settings.get('threads')))}.</p>",
        f'<div class="pair">{"".join(cards)}</div>',
    )


def _parity(digest: dict[str, Any]) -> str:
    p = digest["parity"]
    if not p:
        return markup.section("parity", markup.absent(digest, "parity"))
    agree = markup.status(p["status"], "outputs agree" if p["status"] == "ok" else "DIVERGES")
    head = (
        f"<p>{agree}: max abs output "
        f"diff {sci(p.get('max_abs_output'))}, loss diff {sci(p.get('loss_abs_diff'))}, max abs gradient "
        f"diff {sci(p.get('max_abs_gradient'))} (tolerances {p.get('atol')} / {p.get('grad_atol')}); "
        f"first divergent layer: {escape(str(p.get('first_divergent') or 'none'))}.</p>"
    )
    for cause in p.get("causes", []):
        fix = f" Fix: {escape(cause['fix'])}." if cause.get("fix") else ""
        head += f'<p class="note">Likely cause ({escape(cause["layer"])}): {escape(cause["text"])}.{fix}</p>'
    if p.get("measured"):
        head += f'<p class="note">Your own model: {escape(p["measured"])}.</p>'
    for own in p.get("user_model", []):
        what = "your model against its twin" if own["case"] == "user-vs-twin" else "your pair"
        verdict = markup.status(own["status"], "agree" if own["status"] == "ok" else "DIVERGE")
        head += f"<p>Parity of {what}: {verdict}: {escape(own['message'])}</p>"

    rows = [
        [
            layer["layer"],
            layer.get("kind"),
            layer.get("shape"),
            sci(layer["max_abs"]),
            markup.status("ok" if layer["ok"] else "failed", "ok" if layer["ok"] else "diverges"),
        ]
        for layer in p.get("layers", [])
    ]
    table = markup.table(["layer", "type", "shape", "max abs diff", ""], rows, numeric=[3])
    return markup.section(
        "parity", head, markup.pair(plots.parity_layers(p), table, "channels-last activations")
    )


def _training(run: Run, digest: dict[str, Any]) -> str:
    t = digest["train"]
    if not t or not t["modes"]:
        return markup.section("training", markup.absent(digest, "train"))
    task = digest.get("task")
    head = (
        f'<p class="muted">{escape(_train_settings(digest["settings"].get("train", {})))}; '
        "step times exclude the first step (compile/trace), reported on its own.</p>"
    )
    speed = [
        [
            m["mode"],
            markup.status(m["status"]) if m["status"] != "ok" else m["family"],
            markup.num(m.get("samples_per_s")),
            markup.num(m.get("step_ms"), ".3f"),
            markup.num(m.get("step_iqr_ms"), ".3f"),
            markup.num(m.get("first_step_s"), ".2f"),
            _vs(t, m["mode"]),
        ]
        for m in t["modes"]
    ]
    speed_table = markup.table(
        ["mode", "side", "samples/s", "step ms", "IQR ms", "first step s", "vs fastest (95% CI)"],
        speed,
        numeric=[2, 3, 4, 5],
    )
    acc = [
        [
            m["mode"],
            markup.num(wording.score_value(m.get("val_acc"), task), ".3f"),
            markup.num(m.get("time_to_target_s"), ".2f"),
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
            markup.num(m.get("gflops"), ".2f"),
            markup.num(m.get("peak_gflops"), ".1f"),
            markup.num(100 * m["utilization"], ".1f") if m.get("utilization") is not None else None,
            markup.num(m.get("framework_peak_gflops"), ".1f"),
        ]
        for m in t["modes"]
    ]
    conv = t.get("convergence")
    conv_text = ""
    if conv:
        words = wording.convergence(conv, task)
        badge = markup.status("ok" if words.ok else "failed", words.status)
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
    return markup.section(
        "training",
        head,
        "<h3>Throughput per mode</h3>",
        markup.pair(plots.train_throughput(run), speed_table),
        "<h3>Step-time distributions</h3>",
        markup.pair(
            plots.train_step_times(run),
            markup.table(["mode", "step ms", "IQR ms"], [r[:1] + r[3:5] for r in speed]),
        ),
        "<h3>Loss curves and time to accuracy</h3>",
        markup.pair(
            plots.train_losses(run),
            conv_text or '<p class="muted">one loss per step, same data order</p>',
            loss_caption,
        ),
        markup.pair(
            plots.time_to_accuracy(run, target, task),
            markup.table(["mode", wording.score_name(task), "to target s"], acc, numeric=[1, 2]),
            acc_caption,
        ),
        "<h3>Utilization against the machine's ceiling</h3>",
        markup.pair(
            plots.utilization(t),
            markup.table(
                ["mode", "GFLOP/s", "ceiling GFLOP/s", "% of ceiling", "own probe GFLOP/s"],
                util,
                numeric=[1, 2, 3, 4],
            ),
            _ceiling_caption(t, digest["environment"]),
        ),
    )


def _ceiling_caption(t: dict[str, Any], env: dict[str, Any]) -> str:
    """What the ceiling is: the best fp32 matmul probe of any framework here, each framework's own
    probe (which BLAS it runs is a finding of its own) and the CPU's theoretical estimate."""
    peaks = {k: v for k, v in (t.get("peak_gflops") or {}).items() if v}
    probes = ", ".join(f"{FRAMEWORK_NAMES.get(k, k)} {v:.1f}" for k, v in peaks.items())
    text = f"ceiling: the best fp32 matmul probe on this machine ({probes} GFLOP/s)" if probes else ""
    estimate = env.get("cpu_peak_estimate")
    if estimate:
        text += (
            f"; the CPU's theoretical peak, estimated: {estimate['gflops']:.0f} GFLOP/s ({estimate['basis']})"
        )
    return text


FRAMEWORK_NAMES = FAMILY


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
