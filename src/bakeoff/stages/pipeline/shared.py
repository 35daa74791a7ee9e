"""What the input-pipeline stage's parent and its framework workers share: the augmentation's
parameters, the PNG workload, the epoch timing loop and the case loop, so both sides time the same way.
Framework code imports this module, never the stage's orchestration in `pipelines.py`. It imports
neither torch nor TensorFlow.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.measure.isolation import case_loop
from bakeoff.npz import load_arrays
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.twins.canonical import Weights, load_weights

STAGE = "pipeline"
PROBE_CASE = "probe"
INPUT_BOUND_CASE = "input-bound"
FRAMEWORKS = ("torch", "keras")
PARITY_CASE = "same augmentation"
# Images both workers augment with fixed crops and flips, compared with each other and with numpy.
PROBE_IMAGES = 16
# Both sides do the same float32 ops in the same order; measured difference is exactly 0.
PROBE_ATOL = 1e-6


@dataclass(frozen=True)
class Augment:
    """The one augmentation both frameworks apply, sample by sample."""

    pad: int = 2
    size: int = 28
    flip_p: float = 0.5
    mean: float = 0.1307
    std: float = 0.3081

    @property
    def crop_positions(self) -> int:
        """Offsets per axis a random crop can start at: 0 .. 2 * pad."""
        return 2 * self.pad + 1

    def describe(self) -> str:
        s = self.size
        return (
            f"decode PNG to uint8 {s}x{s}; zero-pad {self.pad} px and random-crop back to {s}x{s}; "
            f"random horizontal flip (p={self.flip_p}); x / 255 to float32; (x - {self.mean}) / {self.std}"
        )


# ---------------------------------------------------------------- the workload


@dataclass
class Workload:
    """PNG files as one byte buffer: image i is png[offsets[i]:offsets[i + 1]]."""

    png: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> bytes:
        return self.png[self.offsets[index] : self.offsets[index + 1]].tobytes()

    def images(self) -> list[bytes]:
        return [self.image(i) for i in range(len(self))]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"png": self.png, "offsets": self.offsets, "labels": self.labels}


def read_workload(path: Path | str) -> Workload:
    arrays = load_arrays(path)
    return Workload(arrays["png"], arrays["offsets"], arrays["labels"])


# ---------------------------------------------------------------- worker side, framework-neutral


class Pipeline(Protocol):
    """One built variant inside a worker: a fresh pass over the data per `epoch()`, then `close()`."""

    def epoch(self) -> Iterable[Any]: ...

    def close(self) -> None: ...


# Builds a case's pipeline; returns it with the framework-specific settings to record.
Builder = Callable[[dict[str, Any]], tuple[Pipeline, dict[str, Any]]]
# Turns a batch into host numpy arrays (images, labels): TF's `.numpy()` finishes its work (rule 7).
Materialize = Callable[[Any], tuple[np.ndarray, np.ndarray]]


@dataclass
class EpochTimes:
    """Raw clock readings of every pass; a pass's first batch is its start-up, kept apart."""

    first_batch_s: list[float] = field(default_factory=list)
    batch_s: list[list[float]] = field(default_factory=list)
    samples_per_s: list[float] = field(default_factory=list)
    checksums: list[int] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)


def time_epochs(pipeline: Pipeline, materialize: Materialize, epochs: int) -> EpochTimes:
    """Times `epochs` full passes; throughput counts from the first batch in hand to the last."""
    out = EpochTimes()
    for _ in range(epochs):
        marks, sizes = [], []
        first: tuple[np.ndarray, np.ndarray] | None = None
        start = time.perf_counter()
        for batch in pipeline.epoch():
            x, y = materialize(batch)
            marks.append(time.perf_counter())
            sizes.append(len(x))
            if first is None:
                first = (x, y)
        if first is None or len(marks) < 2:
            raise BakeoffError(f"a pass yielded {len(marks)} batch(es); at least 2 are needed to time one")
        out.first_batch_s.append(marks[0] - start)
        out.batch_s.append(np.diff(marks).tolist())
        out.samples_per_s.append(sum(sizes[1:]) / (marks[-1] - marks[0]))
        # The first batch of each pass shows whether augmentation is drawn afresh every epoch; a plain
        # sum would not, since MNIST's empty border makes it blind to small shifts and to flips.
        out.checksums.append(zlib.crc32(np.ascontiguousarray(first[0]).tobytes()))
        out.layout = {
            "images": [list(first[0].shape), str(first[0].dtype)],
            "labels": [list(first[1].shape), str(first[1].dtype)],
        }
    return out


def measure_case(
    case: dict[str, Any], build: Builder, materialize: Materialize, epochs: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Builds one variant and times a warm-up pass plus `epochs` timed passes (the parent samples the
    worker's CPU and RSS from outside meanwhile)."""
    started = time.perf_counter()
    pipeline, settings = build(case)
    built = time.perf_counter()
    try:
        times = time_epochs(pipeline, materialize, epochs + 1)
    finally:
        # Loader processes and prefetch threads must be gone before the next case is timed.
        pipeline.close()
    arrays = {
        "first_batch_s": np.array(times.first_batch_s),
        "batch_s": np.array([t for epoch in times.batch_s[1:] for t in epoch]),
        "samples_per_s": np.array(times.samples_per_s[1:]),
    }
    summary = {
        "build_s": built - started,
        "warmup_samples_per_s": times.samples_per_s[0],
        "augment_varies_per_epoch": len(set(times.checksums)) == len(times.checksums),
        "layout": times.layout,
        "seconds": time.perf_counter() - started,
        "settings": settings,
    }
    return arrays, summary


def serve_cases(
    request: dict[str, Any],
    build: Builder,
    materialize: Materialize,
    probe: Callable[[], dict[str, np.ndarray]],
    fed: Callable[[dict[str, Any]], dict[str, Any]],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Worker side: every case of the request, each published as it finishes (see isolation.case_loop):
    the augmentation probe, the pipeline variants, then the input-bound check fed by the fastest of
    the variants just measured."""
    variants = {case["name"]: case for case in request["variants"]}
    speed: dict[str, float] = {}

    def run_one(name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if name == PROBE_CASE:
            return probe(), {}
        if name == INPUT_BOUND_CASE:
            fastest = max(speed, key=speed.__getitem__) if speed else next(iter(variants))
            info = {**fed(variants[fastest]), "pipeline": fastest}
            return {
                "memory": np.array(info.pop("memory_step_s")),
                "fed": np.array(info.pop("fed_step_s")),
            }, info
        arrays, summary = measure_case(variants[name], build, materialize, request["epochs"])
        speed[name] = float(np.median(arrays["samples_per_s"]))
        return arrays, summary

    return case_loop(request, run_one)


def training_model(request: dict[str, Any]) -> tuple[Graph, Weights]:
    train = request["train"]
    return build_graph(ModelSpec.model_validate(train["spec"])), load_weights(Path(train["weights"]))


def time_fed_steps(batches: Iterable[Any], step: Callable[[Any], object]) -> list[float]:
    """Time from one training step's end to the next's, so fetching the batch counts: the step time a
    model sees when `batches` feeds it. The first interval (start-up) is dropped."""
    times = []
    last = time.perf_counter()
    for batch in batches:
        step(batch)
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times[1:]


def input_bound(request: dict[str, Any], pipeline: Pipeline, step: Callable[[Any], object]) -> dict[str, Any]:
    """Training fed by the pipeline against training fed from the same batches already in memory."""
    memory = list(pipeline.epoch())  # one pass of augmented batches, kept
    time_fed_steps(memory, step)  # warm-up: first-step compilation and allocations
    in_memory = time_fed_steps(memory, step)
    fed = time_fed_steps(pipeline.epoch(), step)
    return {"memory_step_s": in_memory, "fed_step_s": fed, "model": request["train"]["spec"]["name"]}
