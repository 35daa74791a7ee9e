"""The input-pipeline bake-off, parent side: torch DataLoader against tf.data on one decode-and-augment
workload.

The parent PNG-encodes MNIST digits once and writes them to an .npz; one worker per framework (never
both in one process, never both at once) decodes, augments and batches them in every variant it owns,
and sends back raw per-batch times. What the workers share lives in `shared.py`. This module imports
neither torch nor TensorFlow.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.data import datasets
from bakeoff.errors import UsageError
from bakeoff.measure.env import physical_cores
from bakeoff.measure.isolation import WorkerResult, run_cases
from bakeoff.measure.stats import ratio_ci, summarize
from bakeoff.npz import save_arrays
from bakeoff.results.store import make_record
from bakeoff.spec.load import resolve
from bakeoff.stages.pipeline.shared import (
    FRAMEWORKS,
    INPUT_BOUND_CASE,
    PARITY_CASE,
    PROBE_ATOL,
    PROBE_CASE,
    PROBE_IMAGES,
    STAGE,
    Augment,
    Workload,
    read_workload,
)

# ---------------------------------------------------------------- parent side


def reference_augment(image: np.ndarray, dy: int, dx: int, flip: bool, aug: Augment) -> np.ndarray:
    """The augmentation in numpy, float32 throughout: what both frameworks must reproduce exactly."""
    padded = np.pad(image, aug.pad)
    crop = padded[dy : dy + aug.size, dx : dx + aug.size]
    if flip:
        crop = crop[:, ::-1]
    scaled = crop.astype(np.float32) / np.float32(255.0)
    return (scaled - np.float32(aug.mean)) / np.float32(aug.std)


def mnist_digits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST training split as uint8 [n, 28, 28], in the split's seeded order, with its labels."""
    dataset = datasets.mnist(resolve("lenet"), seed=seed)
    # The loader scales the CSV's bytes by 1/255; rounding back recovers every byte exactly.
    images = np.rint(dataset.x_train[0][..., 0] * 255.0).astype(np.uint8)
    return images, dataset.y_train


def encode_png(images: np.ndarray, labels: np.ndarray) -> Workload:
    from PIL import Image  # only the parent encodes; workers decode with their framework's own tools

    blobs = []
    for image in images:
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="PNG")
        blobs.append(np.frombuffer(out.getvalue(), dtype=np.uint8))
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return Workload(np.concatenate(blobs), offsets, labels.astype(np.int64))


def write_workload(path: Path, samples: int, seed: int) -> Workload:
    """`samples` digits (cycling through the split if it holds fewer), PNG-encoded, saved to `path`."""
    images, labels = mnist_digits(seed)
    take = np.arange(samples) % len(labels)
    workload = encode_png(images[take], labels[take])
    save_arrays(path, workload.arrays())
    return workload


def probe_params(aug: Augment, seed: int, n: int = PROBE_IMAGES) -> dict[str, list[int]]:
    """Fixed crop offsets and flips for the augmentation parity check; flips alternate so both occur."""
    rng = np.random.default_rng(seed + 11)
    return {
        "dy": rng.integers(0, aug.crop_positions, n).tolist(),
        "dx": rng.integers(0, aug.crop_positions, n).tolist(),
        "flip": [i % 2 for i in range(n)],
    }


def default_workers() -> tuple[int, ...]:
    """DataLoader worker counts to try: none, two, and every physical core when there are more."""
    cores = physical_cores()
    return tuple(sorted({0, min(2, cores), cores}))


def torch_cases(workers: Sequence[int]) -> list[dict[str, Any]]:
    return [{"name": f"dataloader/workers={n}", "num_workers": n} for n in workers]


def keras_cases() -> list[dict[str, Any]]:
    # 'sequential' maps in the caller's thread without prefetch: the analogue of num_workers=0.
    return [
        {"name": "tf.data/sequential", "parallel": "sequential", "cache": False},
        {"name": "tf.data/autotune", "parallel": "autotune", "cache": False},
        {"name": "tf.data/autotune+cache", "parallel": "autotune", "cache": True},
    ]


def prepare(
    workdir: Path,
    *,
    batch: int = 64,
    batches: int = 60,
    epochs: int = 10,
    workers: Sequence[int] | None = None,
    threads: int | None = None,
    seed: int = 0,
    train: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Writes the workload once and returns one request per framework (a test may alter one).

    With `train` (spec, weights path, lr), each worker also trains that model fed by its fastest
    pipeline and from memory, to tell whether training is input-bound."""
    if batch < 1 or batches < 2 or epochs < 1:
        raise UsageError(
            f"pipeline: batch must be >= 1, batches >= 2 (the first is warm-up) and epochs >= 1; "
            f"got batch={batch}, batches={batches}, epochs={epochs}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "mnist-png.npz"
    write_workload(data, batch * batches, seed)
    aug = Augment()
    common = {
        "job": STAGE,
        "data": str(data),
        "batch": batch,
        "batches": batches,
        "epochs": epochs,
        "threads": threads or physical_cores(),
        "seed": seed,
        "augment": asdict(aug),
        "probe": probe_params(aug, seed),
        **({"train": train} if train else {}),
    }
    return [
        {**common, "framework": "torch", "variants": torch_cases(workers or default_workers())},
        {**common, "framework": "keras", "variants": keras_cases()},
    ]


def _quiet(line: str) -> None:
    pass


def _ignore(record: dict[str, Any]) -> None:
    pass


def run_requests(
    requests: list[dict[str, Any]],
    workdir: Path,
    timeout: float = 600.0,
    progress: Callable[[str], None] = _quiet,
    on_record: Callable[[dict[str, Any]], None] = _ignore,
) -> list[dict[str, Any]]:
    """Runs each framework's cases in its worker, one framework after the other (two at once would
    share the cores being measured), recording each case as it finishes; then the augmentation check."""
    records: list[dict[str, Any]] = []
    probes: dict[str, WorkerResult] = {}

    def keep(record: dict[str, Any]) -> None:
        records.append(record)
        on_record(record)

    for request in requests:
        framework = request["framework"]
        names = [PROBE_CASE, *(case["name"] for case in request["variants"])]
        names += [INPUT_BOUND_CASE] if "train" in request else []
        progress(f"pipeline: {framework} worker ({', '.join(names[1:])})")

        def on_case(name: str, result: WorkerResult, request: dict[str, Any] = request) -> None:
            if name == PROBE_CASE:
                probes[request["framework"]] = result
            elif name == INPUT_BOUND_CASE:
                keep(input_bound_record(request, result))
            else:
                keep(case_record(request, name, result))

        run_cases({**request, "job": STAGE}, names, workdir, case_timeout=timeout, on_case=on_case)
    keep(parity_record(requests[0], probes))
    return records


def run_pipelines(
    workdir: Path,
    *,
    timeout: float = 600.0,
    progress: Callable[[str], None] = _quiet,
    on_record: Callable[[dict[str, Any]], None] = _ignore,
    **workload: Any,
) -> list[dict[str, Any]]:
    """Every pipeline variant of both frameworks, each timed over a warm-up pass and `epochs` passes of
    `batches` batches; one record per case plus one for the augmentation parity check. `workload`
    takes prepare()'s options (batch, batches, epochs, workers, threads, seed, train)."""
    requests = prepare(workdir, **workload)
    return run_requests(requests, workdir, timeout, progress, on_record)


def common_settings(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch": request["batch"],
        "batches": request["batches"],
        "epochs": request["epochs"],
        "samples": request["batch"] * request["batches"],
        "threads": request["threads"],
        "seed": request["seed"],
        "augmentation": Augment(**request["augment"]).describe(),
        "order": "the MNIST training split's seeded order, the same every pass; no per-pass shuffle",
        "warmup": "one full pass, untimed; the first batch of every pass is start-up, not throughput",
        "host_to_device": "excluded: batches stay in host memory",
        "peak_rss": "the worker plus its loader processes, sampled; pages they share count once per process",
    }


def case_record(request: dict[str, Any], name: str, result: WorkerResult) -> dict[str, Any]:
    framework = request["framework"]
    if not result.ok:
        return make_record(STAGE, name, "failed", framework=framework, message=result.error)
    return ok_record(framework, name, result, common_settings(request))


def ok_record(framework: str, name: str, result: WorkerResult, settings: dict[str, Any]) -> dict[str, Any]:
    info, arrays = result.meta, result.arrays
    resources = info.get("resources") or {}
    per_epoch = arrays["samples_per_s"]
    batch_s = arrays["batch_s"]
    first = arrays["first_batch_s"]
    throughput = summarize(per_epoch)
    metrics = {
        "samples_per_s": throughput.median,
        "samples_per_s_stats": throughput.to_dict(),
        "batch_s": summarize(batch_s).to_dict(),
        # Cold start: building the pipeline plus waiting for the very first batch.
        "first_batch_s": info["build_s"] + float(first[0]),
        "build_s": info["build_s"],
        # Later passes restart their iterator (and, without persistent workers, their processes).
        "epoch_start_s": summarize(first[1:]).to_dict(),
        "warmup_samples_per_s": info["warmup_samples_per_s"],
        "peak_rss_mb": resources.get("rss_peak_bytes", 0) / 2**20,
        "cpu_percent_mean": resources.get("cpu_percent_mean", 0.0),
        "augment_varies_per_epoch": info["augment_varies_per_epoch"],
        "layout": info["layout"],
        "raw": {
            "samples_per_s": per_epoch.tolist(),
            "batch_s": batch_s.tolist(),
            "first_batch_s": first.tolist(),
        },
    }
    notes = []
    status = "ok"
    if not info["augment_varies_per_epoch"]:
        status = "failed"
        notes.append("the first batch is identical in every pass: augmentation is not redrawn per epoch")
    if throughput.noisy:
        notes.append(f"noisy: IQR/median of samples/s is {throughput.rel_iqr:.0%}")
    return make_record(
        STAGE,
        name,
        status,
        framework=framework,
        message="; ".join(notes),
        metrics=metrics,
        settings={**settings, **info["settings"]},
        seconds=info["seconds"],
    )


def parity_record(request: dict[str, Any], results: dict[str, WorkerResult]) -> dict[str, Any]:
    """`results`: each framework's probe case."""
    """Do both frameworks apply the same augmentation? Fixed crops and flips, compared exactly, and
    against the numpy reference so 'the same' also means 'the one described'."""
    missing = [f for f in FRAMEWORKS if f not in results or not results[f].ok]
    if missing:
        message = f"needs both workers; {', '.join(missing)} failed"
        return make_record(STAGE, PARITY_CASE, "failed", message=message)
    aug = Augment(**request["augment"])
    reference = reference_images(read_workload(request["data"]), request["probe"], aug)
    t, k = results["torch"].arrays, results["keras"].arrays  # probe/x, probe/decoded, probe/y
    metrics = {
        "images": len(reference),
        "decoded_equal": bool(np.array_equal(t["probe/decoded"], k["probe/decoded"])),
        "torch_vs_keras_max_abs": _max_abs(t["probe/x"], k["probe/x"]),
        "torch_vs_reference_max_abs": _max_abs(t["probe/x"], reference),
        "keras_vs_reference_max_abs": _max_abs(k["probe/x"], reference),
        "labels_equal": bool(np.array_equal(t["probe/y"], k["probe/y"])),
    }
    diffs = [v for key, v in metrics.items() if key.endswith("max_abs")]
    ok = metrics["decoded_equal"] and metrics["labels_equal"] and max(diffs) <= PROBE_ATOL
    message = "" if ok else f"augmentation differs: {metrics}"
    return make_record(
        STAGE,
        PARITY_CASE,
        "ok" if ok else "failed",
        message=message,
        metrics=metrics,
        settings={"atol": PROBE_ATOL, "augmentation": aug.describe(), "layout": "NHWC (torch transposed)"},
    )


def reference_images(workload: Workload, probe: dict[str, list[int]], aug: Augment) -> np.ndarray:
    from PIL import Image

    out = []
    for i, (dy, dx, flip) in enumerate(zip(probe["dy"], probe["dx"], probe["flip"], strict=True)):
        image = np.array(Image.open(io.BytesIO(workload.image(i))), dtype=np.uint8)
        out.append(reference_augment(image, dy, dx, bool(flip), aug)[..., None])
    return np.stack(out)


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


INPUT_BOUND_RATIO = 1.10  # fed steps this much slower than in-memory ones, significantly: input-bound


def input_bound_record(request: dict[str, Any], result: WorkerResult) -> dict[str, Any]:
    framework = request["framework"]
    if not result.ok:
        return make_record(STAGE, INPUT_BOUND_CASE, "failed", framework=framework, message=result.error)
    info, memory, fed = result.meta, result.arrays["memory"], result.arrays["fed"]
    ratio = ratio_ci(fed, memory, block=None)  # consecutive steps are not independent
    bound = ratio.low > 1.0 and ratio.ratio > INPUT_BOUND_RATIO
    verdict = "input-bound" if bound else "not input-bound"
    message = (
        f"{info['model']} fed by {info['pipeline']}: step {ratio.ratio:.2f}x the in-memory step "
        f"(95% CI {ratio.low:.2f}-{ratio.high:.2f}): {verdict}"
    )
    metrics = {
        "input_bound": bound,
        "ratio": ratio.to_dict(),
        "memory_step_s": summarize(memory).to_dict(),
        "fed_step_s": summarize(fed).to_dict(),
        "model": info["model"],
        "pipeline": info["pipeline"],
    }
    settings = {
        **common_settings(request),
        "threshold": f"ratio > {INPUT_BOUND_RATIO} with CI above 1",
        "optimizer": "adam",
        "lr": request["train"]["lr"],
    }
    return make_record(
        STAGE, "input-bound", "ok", framework=framework, message=message, metrics=metrics, settings=settings
    )
