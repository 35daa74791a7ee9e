"""The headline numbers of a run, read from its records: what the report, summary.md, results.json and
the verdict all show. Raw samples stay in records.jsonl; this keeps what a reader compares.
"""

from __future__ import annotations

from typing import Any

from bakeoff.frameworks import BACKEND_NAMES
from bakeoff.measure.stats import P99_MIN_SAMPLES
from bakeoff.report import serving
from bakeoff.report.debug import digest as debug_digest
from bakeoff.results.run import Run
from bakeoff.runtimes import RUNTIMES
from bakeoff.stages.export.artifacts import ARTIFACTS
from bakeoff.stages.train.shared import MODES

# Each side of the question, by the framework an artifact or training mode starts from; Keras 3 on
# PyTorch and on JAX are contenders of their own, on neither side of the PyTorch/TensorFlow question.
FAMILY = {
    "torch": "PyTorch",
    "keras": "TensorFlow",
    **{w: BACKEND_NAMES[w] for w in ("keras-torch", "keras-jax")},
}
STAGE_TITLES = {
    "parity": "parity",
    "backends": "Keras backends",
    "train": "training",
    "pipeline": "input pipelines",
    "export": "export",
    "infer": "inference",
    "distributed": "distributed training",
    "debug": "debugging",
}


def family(name: str) -> str:
    """'PyTorch' or 'TensorFlow' for a training mode, artifact, or 'runtime/artifact' inference case: the
    framework the catalogue says it starts from; 'Keras on PyTorch' or 'Keras on JAX' for those
    contenders' modes and runtimes."""
    runtime, _, item = name.rpartition("/")
    if runtime in RUNTIMES and RUNTIMES[runtime].worker in FAMILY and RUNTIMES[runtime].backends:
        return FAMILY[RUNTIMES[runtime].worker]  # the Keras twin: the backend that runs it decides
    origin = ARTIFACTS[item].origin if item in ARTIFACTS else MODES.get(item, ("?",))[0]
    return FAMILY.get(origin, "?")


def digest(run: Run) -> dict[str, Any]:
    info = run.info
    return {
        "run": run.path.name,
        "model": run.model,
        "task": run.task,
        "started_at": info.get("started_at"),
        "finished": run.finished,
        "seconds": info.get("seconds"),
        "resumed": len(info.get("resumed_at", [])),
        "quick": bool(info.get("options", {}).get("quick")),
        "stages": info.get("stages", []),
        "missing": run.missing,
        "params": info.get("params"),
        "flops_per_sample": info.get("flops_per_sample"),
        "environment": info.get("environment", {}),
        "machine": info.get("guard") or {},
        "settings": _settings(run),
        "parity": _parity(run),
        "backends": _backends(run),
        "train": _train(run),
        "pipeline": _pipeline(run),
        "export": _export(run),
        "infer": _infer(run),
        "debug": debug_digest(run.latest),
        "serve": serving.digest(run),
        "distributed": _distributed(run),
        "failed": [
            {"stage": r["stage"], "case": r["case"], "framework": r["framework"], "message": r["message"]}
            for r in run.failed
        ],
    }


def _settings(run: Run) -> dict[str, Any]:
    """The fairness settings each stage recorded, so the report shows what every number was measured under."""
    found: dict[str, Any] = {"threads": run.info.get("options", {}).get("threads")}
    for stage in ("parity", "backends", "train", "pipeline", "export", "infer", "distributed"):
        # The matmul-peak probe and the summaries carry no (or other) settings than the cases themselves.
        settings = next(
            (
                r["settings"]
                for r in run.stage(stage)
                if r["settings"] and r["case"] not in ("peak", "summary")
            ),
            None,
        )
        if settings:
            found[stage] = settings
    return found


USER_CASES = ("user-vs-twin", "user-pair")


def _parity(run: Run) -> dict[str, Any] | None:
    outputs, layers, grads = (run.case("parity", c) for c in ("outputs", "layers", "gradients"))
    own = [r for r in run.stage("parity") if r["case"] in USER_CASES]
    if outputs is None and layers is None and not own:
        return None
    checks = (outputs, layers, grads, *own)
    out: dict[str, Any] = {
        "status": "failed" if any(r and r["status"] == "failed" for r in checks) else "ok",
        "messages": [r["message"] for r in (outputs, layers, grads) if r and r["message"]],
        # The user's own model against the twin derived from it, and the user's pair.
        "user_model": [
            {
                "case": r["case"],
                "status": r["status"],
                "message": r["message"],
                "causes": r["metrics"].get("causes", []),
            }
            for r in own
        ],
        "measured": (run.info.get("options", {}).get("byo") or {}).get("measured"),
    }
    if outputs:
        out["max_abs_output"] = outputs["metrics"].get("max_abs")
        out["loss_abs_diff"] = outputs["metrics"].get("loss_abs_diff")
        out["atol"] = outputs["settings"].get("atol")
        out["grad_atol"] = outputs["settings"].get("grad_atol")
    if layers:
        out["layers"] = layers["metrics"].get("layers", [])
        out["first_divergent"] = layers["metrics"].get("first_divergent")
        out["causes"] = layers["metrics"].get("causes", [])
    if grads:
        out["max_abs_gradient"] = grads["metrics"].get("max_abs")
    return out


def _backends(run: Run) -> dict[str, Any] | None:
    """The Keras twin on each Keras 3 backend: parity against the PyTorch twin, and the loss curves of the
    backends' training modes against eager Keras on TensorFlow."""
    records = run.stage("backends")
    summary = run.case("train", "summary")
    curves = (summary or {}).get("metrics", {}).get("mode_convergence", {})
    modes = {m: c for m, c in curves.items() if MODES.get(m, ("",))[0] in ("keras-torch", "keras-jax")}
    if not records and not modes:
        return None
    parity = [
        {
            "backend": r["case"],
            "contender": BACKEND_NAMES.get(str(r["framework"]), r["case"]),
            "status": r["status"],
            "message": r["message"],
            "max_abs_diff": r["metrics"].get("max_abs_diff"),
            "max_abs_diff_vs_tensorflow": r["metrics"].get("max_abs_diff_vs_tensorflow"),
            "grad_max_abs_diff": r["metrics"].get("grad_max_abs_diff"),
            "atol": r["settings"].get("atol"),
        }
        for r in records
    ]
    return {"parity": parity, "curves": modes}


def _train(run: Run) -> dict[str, Any] | None:
    records = run.stage("train")
    if not records:
        return None
    modes = []
    for r in records:
        if r["case"] in ("peak", "summary"):
            continue
        m = r["metrics"]
        row: dict[str, Any] = {
            "mode": r["case"],
            "family": family(r["case"]),
            "status": r["status"],
            "message": r["message"],
        }
        if r["status"] == "ok" and "step_s" in m:
            row.update(
                samples_per_s=m["samples_per_s"]["median"],
                step_ms=m["step_s"]["median"] * 1e3,
                step_iqr_ms=m["step_s"]["iqr"] * 1e3,
                noisy=m["step_s"].get("noisy", False),
                first_step_s=m.get("first_step_s"),
                val_acc=m.get("val_acc"),
                gflops=m.get("gflops"),
                peak_gflops=m.get("peak_gflops"),
                framework_peak_gflops=m.get("framework_peak_gflops"),
                utilization=m.get("utilization"),
            )
        modes.append(row)
    summary = run.case("train", "summary")
    s = summary["metrics"] if summary else {}
    peaks = {r["framework"]: r["metrics"].get("gflops") for r in records if r["case"] == "peak"}
    for row in modes:
        row["time_to_target_s"] = s.get("time_to_target_s", {}).get(row["mode"])
    return {
        "modes": modes,
        "fastest": s.get("fastest"),
        "vs_fastest": s.get("vs_fastest", {}),
        "target_val_acc": s.get("target_val_acc"),
        "best_val_acc": s.get("best_val_acc"),
        "convergence": s.get("convergence"),
        "peak_gflops": peaks,
    }


def _pipeline(run: Run) -> dict[str, Any] | None:
    records = run.stage("pipeline")
    if not records:
        return None
    rows, bound = [], []
    for r in records:
        m = r["metrics"]
        if r["case"] == "input-bound":
            if r["status"] == "ok":
                bound.append(
                    {"pipeline": m.get("pipeline"), "input_bound": m.get("input_bound"), **m["ratio"]}
                )
            continue
        if "samples_per_s" not in m and r["status"] == "ok":
            continue  # the augmentation-equality check has its own record and no speed
        rows.append(
            {
                "pipeline": r["case"],
                "framework": r["framework"],
                "status": r["status"],
                "message": r["message"],
                "samples_per_s": m.get("samples_per_s"),
                "iqr": m.get("samples_per_s_stats", {}).get("iqr"),
                "noisy": m.get("samples_per_s_stats", {}).get("noisy"),
                "first_batch_ms": (m["first_batch_s"] * 1e3) if m.get("first_batch_s") is not None else None,
            }
        )
    return {"pipelines": rows, "input_bound": bound}


def _export(run: Run) -> dict[str, Any] | None:
    records = [r for r in run.stage("export") if r["case"] != "fit"]
    if not records:
        return None
    rows = []
    for r in records:
        m, art = r["metrics"], ARTIFACTS.get(r["case"])
        v = m.get("verification", {})
        rows.append(
            {
                "artifact": r["case"],
                "family": family(r["case"]),
                "format": m.get("format") or (art.format if art else None),
                "precision": m.get("precision") or (art.precision if art else None),
                "status": r["status"],
                "message": r["message"],
                "size_bytes": m.get("size_bytes"),
                "export_s": m.get("export_seconds"),
                "max_abs_diff": v.get("max_abs_diff"),
                "accuracy": v.get("accuracy"),
                "reference_accuracy": v.get("reference_accuracy"),
                "relative_accuracy": (
                    v["accuracy"] / v["reference_accuracy"]
                    if v.get("accuracy") is not None and v.get("reference_accuracy")
                    else None
                ),
                "gate": m.get("gate"),
            }
        )
    return {"artifacts": rows}


def _infer(run: Run) -> dict[str, Any] | None:
    records = [r for r in run.stage("infer") if r["case"] != "summary"]
    if not records:
        return None
    cases = []
    for r in records:
        m = r["metrics"]
        runtime, _, artifact = r["case"].partition("/")
        batches = {
            int(b): {
                "p50_ms": info["stats"]["median"] * 1e3,
                "p90_ms": info["stats"]["p90"] * 1e3,
                "p99_ms": info["stats"]["p99"] * 1e3 if info["stats"]["n"] >= P99_MIN_SAMPLES else None,
                "samples_per_s": int(b) / info["stats"]["median"],
                "n": info["stats"]["n"],
                "noisy": info["stats"].get("noisy", False),
            }
            for b, info in m.get("batches", {}).items()
        }
        cases.append(
            {
                "case": r["case"],
                "runtime": runtime,
                "artifact": artifact,
                "family": family(r["case"]),
                "device": m.get("device", "cpu"),
                "status": r["status"],
                "message": r["message"],
                "load_s": m.get("load_s"),
                "first_call_s": m.get("first_inference_s"),
                "accuracy": m.get("quality", {}).get("accuracy"),
                "gate": m.get("gate"),
                "rss_peak_mb": (m.get("resources", {}).get("rss_peak_bytes") or 0) / 2**20 or None,
                "batches": batches,
            }
        )
    summary = run.case("infer", "summary")
    return {"cases": cases, "by_device": summary["metrics"]["by_device"] if summary else {}}


def _distributed(run: Run) -> dict[str, Any] | None:
    """The scaling table, the gate of each case against its one-worker run, torch against Keras, and
    whether distributing paid (the stage's summary record)."""
    records = [r for r in run.stage("distributed") if r["case"] != "summary"]
    if not records:
        return None
    summary = run.case("distributed", "summary")
    cases = [
        {
            "case": r["case"],
            "status": r["status"],
            "message": r["message"],
            "api": r["settings"].get("api"),
            "layout": r["settings"].get("layout"),
            "matches_single": r["metrics"].get("matches_single"),
            "max_rel_loss_diff": (r["metrics"].get("vs_single") or {}).get("max_rel_loss_diff"),
            "keras_fixes": r["settings"].get("keras_fixes") or [],
        }
        for r in records
    ]
    m = summary["metrics"] if summary else {}
    return {
        "cases": cases,
        "table": m.get("table", []),
        "cross": m.get("cross", []),
        "verdict": m.get("verdict"),
        "pays": m.get("pays"),
        "summary_status": summary["status"] if summary else None,
        "summary_message": summary["message"] if summary else None,
    }
