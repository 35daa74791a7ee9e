"""report.html's sections on input pipelines, inference (latency, throughput, cold start), exported
artifacts and failed cases, each a table beside its chart.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bakeoff.report import markup, plots, wording
from bakeoff.report.numbers import sci


def keras_backends(digest: dict[str, Any]) -> str:
    """The Keras twin on TensorFlow, PyTorch and JAX: parity against the PyTorch twin, and the loss curves
    of Keras on PyTorch and on JAX against eager Keras on TensorFlow. Their speed is in the training and
    inference tables (families "Keras on PyTorch", "Keras on JAX"); the verdict's "Keras off TensorFlow"
    row compares it."""
    b = digest.get("backends")
    if not b:
        return markup.section("backends", markup.absent(digest, "backends"))
    rows = [
        [
            r["contender"],
            sci(r["max_abs_diff"]),
            sci(r["max_abs_diff_vs_tensorflow"]),
            sci(r["grad_max_abs_diff"]),
            r["atol"],
            markup.status(r["status"], "" if r["status"] == "ok" else r["message"][:120]),
        ]
        for r in b["parity"]
    ]
    parity = markup.table(
        [
            "Keras on",
            "max abs diff vs PyTorch twin",
            "vs Keras on TensorFlow",
            "max gradient diff",
            "atol",
            "",
        ],
        rows,
        [1, 2, 3],
    )
    curves = markup.table(
        ["mode", "against", "steps compared", "max relative loss diff", "allowed", ""],
        [
            [
                mode,
                c["against"],
                c["steps"],
                sci(c["max_rel_loss_diff"]),
                c["loss_rtol"],
                markup.status("ok" if c["ok"] else "failed", "" if c["ok"] else c["why"][:120]),
            ]
            for mode, c in b["curves"].items()
        ],
        [2, 3],
    )
    note = (
        '<p class="note">Same Keras code, canonical weights, data order and Adam rule on every backend; '
        "speed is in the training and inference sections, and the verdict's row "
        '"Keras off TensorFlow" compares it with Keras on TensorFlow.</p>'
    )
    return markup.section("backends", parity if rows else "", curves if b["curves"] else "", note)


def pipelines(digest: dict[str, Any]) -> str:
    p = digest["pipeline"]
    if not p or not p["pipelines"]:
        return markup.section("pipelines", markup.absent(digest, "pipeline"))
    rows = [
        [
            r["pipeline"],
            r["framework"],
            markup.num(r.get("samples_per_s")),
            markup.num(r.get("iqr")),
            markup.num(r.get("first_batch_ms"), ".1f"),
            markup.status(r["status"], r["message"][:80] if r["message"] else ""),
        ]
        for r in p["pipelines"]
    ]
    table = markup.table(
        ["pipeline", "framework", "samples/s", "IQR", "first batch ms", "status"], rows, [2, 3, 4]
    )
    bound = "".join(
        f"<p>{escape(str(b['pipeline']))}: training step {b['ratio']:.2f}x the in-memory step "
        f"(95% CI {b['low']:.2f}-{b['high']:.2f}): "
        f"{'input-bound' if b['input_bound'] else 'not input-bound'}</p>"
        for b in p["input_bound"]
    )
    return markup.section("pipelines", markup.pair(plots.pipelines(p), table + bound))


def inference(digest: dict[str, Any]) -> str:
    inf = digest["infer"]
    if not inf or not inf["cases"]:
        return markup.section("inference", markup.absent(digest, "infer"))
    sizes = sorted({b for c in inf["cases"] for b in c["batches"]})
    styles = plots.latency_styles(inf)  # the table is the chart's legend: one swatch per line
    lat = [
        [_swatch(styles, c["case"]), c["case"], *[_p50(c, b) for b in sizes]]
        if c["status"] == "ok"
        else [None, c["case"], markup.status("failed", c["message"][:120]), *[None] * (len(sizes) - 1)]
        for c in inf["cases"]
    ]
    lat_table = markup.table(
        ["line", "runtime / artifact", *[f"batch {b}" for b in sizes]], lat, range(2, len(sizes) + 2)
    )
    top = sizes[-1] if sizes else None
    thr = [
        [
            c["case"],
            markup.num(c["batches"][top]["samples_per_s"]) if top in c["batches"] else None,
            markup.num(wording.score_value(c.get("accuracy"), digest.get("task")), ".3f"),
            c.get("gate") or "-",
        ]
        for c in inf["cases"]
        if c["status"] == "ok"
    ]
    cold = [
        [
            c["case"],
            markup.num((c.get("load_s") or 0) * 1e3, ".1f"),
            markup.num((c.get("first_call_s") or 0) * 1e3, ".2f"),
            markup.num(c.get("rss_peak_mb"), ".0f"),
        ]
        for c in inf["cases"]
        if c["status"] == "ok"
    ]
    fastest = "".join(
        f"<p>{escape(device)}, batch {escape(size)}: fastest <b>{escape(info['fastest'])}</b></p>"
        for device, by_size in inf.get("by_device", {}).items()
        for size, info in by_size.items()
    )
    return markup.section(
        "inference",
        "<h3>Latency vs batch size</h3>",
        markup.pair(
            plots.latency_by_batch(inf),
            lat_table,
            "p50 ms / p99 ms (p99 from 100+ calls); host copies included. Lines: colour per runtime, "
            "solid and filled for artifacts from PyTorch, dashed and hollow for those from TensorFlow",
        ),
        "<h3>Throughput</h3>",
        markup.pair(
            plots.throughput(inf),
            markup.table(
                ["runtime / artifact", f"samples/s at {top}", _quality_name(digest), "gate"], thr, [1, 2]
            )
            + fastest,
        ),
        "<h3>Cold start</h3>",
        markup.pair(
            plots.cold_start(inf),
            markup.table(["runtime / artifact", "load ms", "first call ms", "peak RSS MB"], cold, [1, 2, 3]),
        ),
    )


def _swatch(styles: dict[str, tuple[str, str, str]], case: str) -> markup.Raw | None:
    return markup.Raw(plots.swatch(styles[case])) if case in styles else None


def _p50(case: dict[str, Any], size: int) -> str | None:
    b = case["batches"].get(size)
    if not b:
        return None
    return f"{b['p50_ms']:.3g}" + (f" / {b['p99_ms']:.3g}" if b.get("p99_ms") is not None else "")


def _quality_name(digest: dict[str, Any]) -> str:
    """The column a model's quality goes in: accuracy, or for regression the MSE (records keep -MSE)."""
    return "val MSE" if wording.regression(digest.get("task")) else "accuracy"


def artifacts(digest: dict[str, Any]) -> str:
    e = digest["export"]
    if not e or not e["artifacts"]:
        return markup.section("artifacts", markup.absent(digest, "export"))
    task = digest.get("task")
    rows = [
        [
            number,
            a["artifact"],
            a.get("format"),
            a.get("precision"),
            markup.num(a["size_bytes"] / 1024 if a.get("size_bytes") else None, ",.0f"),
            sci(a.get("max_abs_diff")) if a["status"] == "ok" else None,
            markup.num(wording.score_value(a.get("accuracy"), task), ".3f"),
            markup.num(100 * a["relative_accuracy"], ".2f") if a.get("relative_accuracy") else None,
            markup.status(
                "ok" if a["status"] == "ok" and a.get("gate") != "fail" else "failed",
                (a.get("gate") or "") if a["status"] == "ok" else a["message"][:100],
            ),
        ]
        for number, a in enumerate(e["artifacts"], 1)
    ]
    relative = "MSE, % of fp32" if wording.regression(task) else "% of fp32"
    headers = ["#", "artifact", "format", "precision", "KB", "max abs diff", _quality_name(digest), relative]
    table = markup.table([*headers, "gate"], rows, [0, 4, 6, 7])
    caption = "each verified against its source model; # numbers the points of the chart"
    return markup.section("artifacts", markup.pair(plots.artifacts(e, task), table, caption))


def serving(digest: dict[str, Any]) -> str:
    from bakeoff.report import serving as srv

    d = digest.get("serve")
    if not d or not d["servers"]:
        if "serve" not in digest.get("stages", []):
            return markup.section(
                "serving",
                '<p class="muted">not measured: this run had no serve stage '
                "(<code>bakeoff run --stages export,serve</code>)</p>",
            )
        return markup.section("serving", markup.absent(digest, "serve"))
    ceiling = d.get("generator_ceiling_rps")
    rows = [
        [
            r["case"],
            r["implementation"] or "-",
            markup.status(r["status"], srv.throughput_text(r, ceiling))
            if r["status"] == "ok"
            else markup.status("failed", r["message"][:160]),
            markup.num(r.get("cold_start_s"), ".1f"),
            markup.num(r.get("cpu_percent"), ".0f"),
            markup.num(r.get("rss_peak_mb"), ",.0f"),
            r.get("protocol") or "-",
        ]
        for r in d["servers"]
    ]
    slo = next((r["slo_ms"] for r in d["servers"] if r.get("slo_ms")), None)
    table = markup.table(
        [
            "server",
            "what ran",
            f"throughput at p99 <= {slo or '?'} ms",
            "cold start s",
            "CPU %",
            "RSS MB",
            "load over",
        ],
        rows,
        [3, 4, 5],
    )
    notes = []
    if ceiling:
        best = max((r.get("slo_throughput_rps") or 0 for r in d["servers"]), default=0)
        notes.append(
            f"<p>Load generator's own ceiling against bakeoff's no-op server: {ceiling:,.0f} req/s"
            + (f", {ceiling / best:.1f}x the best server's throughput at the SLO" if best else "")
            + ". No server is reported slower than the generator could drive it.</p>"
        )
    if any(srv.stand_in(r) for r in d["servers"]):
        notes.append(
            '<p class="note">TF Serving did not run: tensorflow_model_server is not installed here, so the '
            "tf-serving rows are bakeoff's own implementation of TF Serving's REST and gRPC APIs on the same "
            "SavedModel. They show what that API costs on this machine, not TF Serving's own performance.</p>"
        )
    sweep = markup.table(
        ["case", "protocol", "concurrency", "req/s", "p50 ms", "p99 ms", "errors"],
        [
            [
                s["case"],
                s.get("protocol") or "",
                s["concurrency"],
                markup.num(s["rps"]),
                markup.num(s["p50_ms"], ".1f"),
                markup.num(s["p99_ms"], ".1f"),
                s["errors"],
            ]
            for s in d["sweep"]
        ],
        [2, 3, 4, 5, 6],
    )
    bad = srv.bad_input_rows(d)
    bad_table = (
        "<h3>Bad input: each server's answer (status: message)</h3>"
        + markup.table(["server", *srv.BAD_INPUTS], bad)
        if bad
        else ""
    )
    return markup.section(
        "serving",
        markup.pair(plots.knee(d), table, "p99 latency against offered load (open loop): the knee curve"),
        *notes,
        "<h3>Closed-loop concurrency sweep</h3>",
        sweep,
        bad_table,
    )


def distributed(digest: dict[str, Any]) -> str:
    d = digest.get("distributed")
    if not d:
        return markup.section("distributed", markup.absent(digest, "distributed"))
    rows = [
        [
            row["case"],
            row["workers"],
            row["global_batch"],
            markup.num(row["step_s"] * 1e3, ".2f"),
            markup.num(row["samples_per_s"]),
            markup.num(row["speedup"], ".2f"),
            markup.num(row["efficiency"], ".2f"),
            markup.num(row.get("vs_best_one_process"), ".2f"),
            markup.num(row["launch_to_first_step_s"], ".1f"),
            markup.num(row["allreduce_s"] * 1e3, ".2f") if row["allreduce_s"] is not None else None,
            markup.num(row["rss_peak_bytes"] / 2**20),
            markup.num(row.get("vs_raw_loop"), ".2f"),
        ]
        for row in d["table"]
    ]
    table = markup.table(
        [
            "case",
            "workers",
            "global batch",
            "step ms",
            "samples/s",
            "x 1 worker",
            "efficiency",
            "x fastest 1 process",
            "launch to 1st step s",
            "all-reduce ms",
            "peak RSS MiB",
            "step x raw DDP loop",
        ],
        rows,
        range(1, 12),
    )
    gate = [[c["case"], c["layout"], _gate_cell(c), ", ".join(c["keras_fixes"]) or None] for c in d["cases"]]
    gate += [
        [
            c["pair"],
            "torch against Keras",
            markup.status(
                "ok" if c["ok"] else "failed",
                c["why"][:120] or f"max rel. loss diff {sci(c['max_rel_loss_diff'])}",
            ),
            None,
        ]
        for c in d["cross"]
    ]
    notes = f"<p><b>{escape(d['verdict'] or '')}</b></p>" if d.get("verdict") else ""
    notes += (
        '<p class="note">Strong scaling: the global batch fixed, efficiency = speedup / workers. Weak: the '
        "batch per worker fixed, efficiency = one-worker step time / N-worker step time. All-reduce: one "
        "buffer the size of all gradients, timed alone after training. RSS: each launched process tree's "
        "peak, summed. x fastest 1 process: samples/s against the framework's fastest one-process run, "
        "all-cores reference included: what distributing has to beat on this machine.</p>"
    )
    gate_table = markup.table(["case", "layout", "gate (loss curve)", "Keras 3 workarounds applied"], gate)
    return markup.section(
        "distributed",
        markup.pair(plots.scaling(d), notes),
        table,
        "<h3>Correctness gate: each curve against its one-worker run, torch against Keras</h3>",
        gate_table,
    )


def _gate_cell(c: dict[str, Any]) -> Any:
    if c["status"] != "ok" and c["matches_single"] is not False:
        return markup.status("failed", c["message"][:120])
    if c["matches_single"] is None:
        return "not compared: weak scaling trains on a larger global batch"
    if c["max_rel_loss_diff"] is None:
        return markup.status("ok", "the one-worker curve")
    return markup.status(
        "ok" if c["matches_single"] else "failed", f"max rel. loss diff {sci(c['max_rel_loss_diff'])}"
    )


def failures(digest: dict[str, Any]) -> str:
    failed = digest["failed"]
    parts = []
    if digest["missing"]:
        parts.append(f'<p class="note">Not reached (no records): {escape(", ".join(digest["missing"]))}.</p>')
    if not failed:
        parts.append('<p class="ok">No case failed.</p>')
    else:
        parts.append(
            markup.table(
                ["stage", "case", "worker", "reason"],
                [[f["stage"], f["case"], f["framework"], f["message"]] for f in failed],
            )
        )
    return markup.section("failures", *parts)
