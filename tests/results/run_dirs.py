"""Run directories for the runs and compare tests: synthetic records written through RunStore, a copy of
a real run, and Rich output rendered to text."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from bakeoff.measure.stats import summarize
from bakeoff.results.store import RunStore, make_record

ENV: dict[str, Any] = {
    "hostname": "vm",
    "cpu": "AMD EPYC",
    "physical_cores": 2,
    "logical_cores": 2,
    "memory_gib": 23.5,
    "gpus": [],
    "libraries": {"torch": "2.13.0+cpu", "tensorflow-cpu": "2.21.0", "onnxruntime": "1.32.0"},
}


def _render(parts: Any) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=250)
    for part in parts if isinstance(parts, list) else [parts]:
        console.print(part)
    return buffer.getvalue()


def _times(median: float, n: int, seed: int, spread: float = 0.05) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * (1.0 + spread * rng.standard_normal(n)).clip(0.5))


def _train(mode: str, step: float, val_acc: float | None = 0.9, seed: int = 0) -> dict[str, Any]:
    times = [step * 50, *_times(step, 60, seed)]  # the first step is compile/trace: far slower
    metrics = {
        "step_times": times,
        "step_s": summarize(times[1:]).to_dict(),
        "samples_per_s": summarize(64 / np.asarray(times[1:])).to_dict(),
        "val_acc": val_acc,
    }
    framework = mode.split("-")[0]
    return make_record("train", mode, "ok", framework=framework, metrics=metrics)


def _pipeline(case: str, rate: float, seed: int = 0) -> dict[str, Any]:
    raw = _times(rate, 6, seed, spread=0.02)
    metrics = {
        "samples_per_s": float(np.median(raw)),
        "samples_per_s_stats": summarize(raw).to_dict(),
        "raw": {"samples_per_s": raw},
    }
    return make_record("pipeline", case, "ok", framework="torch", metrics=metrics)


def _infer(
    case: str, latency: dict[int, float], accuracy: float = 0.9, gate: str = "pass", seed: int = 0
) -> dict[str, Any]:
    batches = {}
    for size, median in latency.items():
        times = _times(median, 200, seed + size)
        stats = summarize(times).to_dict()
        batches[str(size)] = {"stats": stats, "times": times, "samples_per_s": size / stats["median"]}
    metrics = {
        "batches": batches,
        "quality": {"accuracy": accuracy, "reference_accuracy": 0.9, "top1_agreement": 1.0},
        "gate": gate,
    }
    return make_record("infer", case, "ok", framework="native", metrics=metrics)


def _parity(max_abs: float = 1e-6) -> dict[str, Any]:
    return make_record("parity", "outputs", "ok", metrics={"max_abs": max_abs})


def _records() -> list[dict[str, Any]]:
    return [
        _parity(),
        _train("torch-eager", 0.002),
        _train("keras-graph", 0.004, seed=1),
        _pipeline("dataloader/workers=0", 3000.0),
        _infer("onnxruntime/torch-onnx", {1: 2e-5, 64: 1e-4}),
        _infer("torch-eager/torch-twin", {1: 6e-5, 64: 8e-5}, seed=5),
    ]


def _write_run(
    root: Path,
    name: str,
    records: list[dict[str, Any]],
    *,
    started: str = "2026-11-25T03:00:00+0000",
    finished: bool = True,
    quick: bool = False,
    stages: tuple[str, ...] = ("parity", "train", "pipeline", "infer"),
    env: dict[str, Any] | None = None,
    model: str = "simplenet",
) -> Path:
    path = root / name
    path.mkdir(parents=True)
    store = RunStore(path)
    info: dict[str, Any] = {
        "model": model,
        "spec": {"name": model, "task": {"type": "classification", "num_classes": 10}},
        "stages": list(stages),
        "options": {"threads": 2, "quick": quick, "train": {"epochs": 1}},
        "environment": env or ENV,
        "started_at": started,
    }
    if finished:
        info["finished_at"] = started
    store.write_run(info)
    for record in records:
        store.append(record)
    return path


def _copy(run: Path, root: Path, name: str) -> Path:
    return Path(shutil.copytree(run, root / name, ignore=shutil.ignore_patterns("artifacts")))
