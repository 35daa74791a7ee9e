"""summary.md: the verdict and the headline tables in GitHub markdown, for pasting into a PR or an issue."""

from __future__ import annotations

from typing import Any

from bakeoff.report import wording
from bakeoff.report.debug import markdown_lines as debug_lines
from bakeoff.report.verdict import Verdict


def render(digest: dict[str, Any], verdict: Verdict, claims: list[str] | None = None) -> str:
    """`claims`: the claims table's lines (bakeoff.claims.render), placed under the verdict's table."""
    env = digest["environment"]
    c = verdict.constraints
    lines = [
        f"## bakeoff: {digest['model']} ({digest['run']})",
        "",
        f"**{verdict.headline}**",
        "",
        f"Constraints: goal {c.goal}, team {c.team}, deploy {c.deploy}, hardware {c.hardware}. "
        f"Machine: {env.get('cpu', '?')}, {env.get('physical_cores', '?')} cores, "
        f"{'GPU ' + ', '.join(map(str, env['gpus'])) if env.get('gpus') else 'no GPU'}; "
        f"{digest['settings'].get('threads')} threads for every framework"
        + (", `--quick`" if digest.get("quick") else "")
        + ".",
        "",
    ]
    if digest["missing"] or not digest["finished"]:
        lines += [f"> Partial run: no records for {', '.join(digest['missing']) or 'later cases'}.", ""]
    lines += [f"> {note}" for note in verdict.caveats]
    lines += ["", "| dimension | weight | winner | finding |", "|---|---:|---|---|"]
    lines += [
        f"| {d.title} | {d.weight} | {d.winner or '-'} | {_md(d.finding)} |" for d in verdict.dimensions
    ]
    if claims:
        lines += ["", *claims]
    train = digest.get("train")
    task = digest.get("task")
    if train and train["modes"]:
        lines += [
            "",
            f"| training mode | samples/s | step ms | {wording.score_name(task)} | to target s |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {m['mode']} | {_f(m.get('samples_per_s'), ',.0f')} | {_f(m.get('step_ms'), '.3f')} | "
            f"{_f(wording.score_value(m.get('val_acc'), task), '.3f')} | "
            f"{_f(m.get('time_to_target_s'), '.2f')} |"
            for m in train["modes"]
        ]
        if train.get("convergence"):
            words = wording.convergence(train["convergence"], task)
            lines += ["", f"Convergence, eager PyTorch vs eager Keras: {_md(words.sentence)}."]
    infer = digest.get("infer")
    if infer and infer["cases"]:
        sizes = sorted({b for case in infer["cases"] for b in case["batches"]})
        if sizes:
            lo, hi = sizes[0], sizes[-1]
            lines += ["", f"| runtime / artifact | p50 ms at {lo} | samples/s at {hi} |", "|---|---:|---:|"]
            lines += [
                f"| {case['case']} | {_f(case['batches'].get(lo, {}).get('p50_ms'), '.3g')} | "
                f"{_f(case['batches'].get(hi, {}).get('samples_per_s'), ',.0f')} |"
                for case in infer["cases"]
                if case["status"] == "ok"
            ]
    lines += _serving(digest.get("serve"))
    dist = digest.get("distributed")
    if dist and dist["table"]:
        lines += [
            "",
            "| distributed case | workers | samples/s | x 1 worker | efficiency | launch to 1st step s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['case']} | {r['workers']} | {_f(r['samples_per_s'], ',.0f')} | "
            f"{_f(r['speedup'], '.2f')} | {_f(r['efficiency'], '.2f')} | "
            f"{_f(r['launch_to_first_step_s'], '.1f')} |"
            for r in dist["table"]
        ]
        if dist.get("verdict"):
            lines += ["", f"Distributed: {_md(dist['verdict'])}."]
    lines += debug_lines(digest.get("debug"))
    if digest["failed"]:
        lines += ["", "Failed cases:", ""]
        lines += [f"- {f['stage']} / {f['case']}: {_md(f['message'])}" for f in digest["failed"]]
    lines += ["", "Full report: report.html beside this file; raw records: records.jsonl.", ""]
    return "\n".join(lines)


def _serving(d: dict[str, Any] | None) -> list[str]:
    from bakeoff.report import serving

    if not d or not d["servers"]:
        return []
    ceiling = d.get("generator_ceiling_rps")
    slo = next((r["slo_ms"] for r in d["servers"] if r.get("slo_ms")), None)
    lines = [
        "",
        f"| server | what ran | throughput at p99 <= {slo} ms | cold start s |",
        "|---|---|---|---:|",
    ]
    for r in d["servers"]:
        result = (
            serving.throughput_text(r, ceiling) if r["status"] == "ok" else "failed: " + r["message"][:80]
        )
        lines.append(
            f"| {r['case']} | {_md(r['implementation'] or '-')} | {_md(result)} | "
            f"{_f(r.get('cold_start_s'), '.1f')} |"
        )
    if ceiling:
        lines += ["", f"Load generator ceiling against bakeoff's no-op server: {ceiling:,.0f} req/s."]
    if any(serving.stand_in(r) for r in d["servers"]):
        lines += [
            "",
            "> tf-serving rows are bakeoff's own implementation of TF Serving's APIs "
            "(tensorflow_model_server is not installed here): not TF Serving's own performance.",
        ]
    bad = serving.bad_input_rows(d)
    if bad:
        lines += [
            "",
            "| bad input | " + " | ".join(serving.BAD_INPUTS) + " |",
            "|---" * (len(serving.BAD_INPUTS) + 1) + "|",
        ]
        lines += ["| " + " | ".join(_md(str(c)) for c in row) + " |" for row in bad]
    return lines


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
