"""The serving part of the report, read from the serve stage's records: one row per server and batching
setting (throughput at the p99 SLO, cold start, what exactly ran), its knee curve, the closed-loop sweep,
the bad-input matrix, and the load generator's own ceiling beside every number it bounds."""

from __future__ import annotations

from typing import Any

from bakeoff.results.run import Run
from bakeoff.stages.serve import OWN_TFSERVING

BAD_INPUTS = ("malformed_json", "wrong_shape", "wrong_dtype", "oversized", "unknown_model")


def digest(run: Run) -> dict[str, Any] | None:
    records = run.stage("serve")
    if not records:
        return None
    servers: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    ceiling: float | None = None
    for r in records:
        s, m = r["settings"], r["metrics"]
        if r["case"].endswith("/slo"):
            gen = m.get("generator") or {}
            ceiling = gen.get("ceiling_rps", ceiling)
            servers.append(
                {
                    "case": r["case"].removesuffix("/slo"),
                    "server": s.get("server"),
                    "batching": s.get("batching"),
                    "implementation": s.get("implementation") or m.get("implementation") or "",
                    "status": r["status"],
                    "message": r["message"],
                    "slo_ms": s.get("slo_ms"),
                    "slo_throughput_rps": m.get("slo_throughput_rps"),
                    "slo_met": m.get("slo_met"),
                    "generator_bound": m.get("generator_bound"),
                    "cold_start_s": m.get("cold_start_s"),
                    "protocol": s.get("load_protocol"),
                    "knee": [
                        {
                            "offered_rps": k["offered_rps"],
                            "p99_ms": _ms(k.get("p99_s")),
                            "p50_ms": _ms(k.get("p50_s")),
                        }
                        for k in m.get("knee", [])
                    ],
                    "bad_inputs": m.get("bad_inputs"),
                    "features": m.get("features"),
                    "cpu_percent": (m.get("resources") or {}).get("cpu_percent_mean"),
                    "rss_peak_mb": ((m.get("resources") or {}).get("rss_peak_bytes") or 0) / 2**20 or None,
                }
            )
        elif r["status"] == "ok" and s.get("concurrency"):
            sweep.append(
                {
                    "case": r["case"],
                    "protocol": s.get("load_protocol"),
                    "concurrency": s["concurrency"],
                    "rps": m.get("achieved_rps"),
                    "p50_ms": _ms(m.get("p50_s")),
                    "p99_ms": _ms(m.get("p99_s")),
                    "errors": sum((m.get("errors") or {}).values()) + int(m.get("timeouts") or 0),
                    "generator_bound": m.get("generator_bound"),
                }
            )
    return {"servers": servers, "sweep": sweep, "generator_ceiling_rps": ceiling}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def throughput_text(row: dict[str, Any], ceiling: float | None) -> str:
    value = row.get("slo_throughput_rps")
    if row["status"] != "ok":
        return "failed"
    if not row.get("slo_met"):
        return f"none: p99 over {row.get('slo_ms'):g} ms at every rate tried"
    text = f"{value:,.0f} req/s"
    if row.get("generator_bound") and ceiling:
        text = f"at least {text} (the generator's ceiling, {ceiling:,.0f} req/s)"
    return text


def stand_in(row: dict[str, Any]) -> bool:
    return row.get("implementation") == OWN_TFSERVING


def bad_input_rows(d: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for row in d["servers"]:
        matrix = row.get("bad_inputs")
        if not matrix:
            continue
        cells = []
        for kind in BAD_INPUTS:
            cell = matrix.get(kind) or {}
            status = cell.get("status")
            cells.append("-" if status is None else f"{status}: {str(cell.get('message') or '')[:60]}")
        rows.append([row["case"], *cells])
    return rows
