"""The worker side shared by both frameworks' export modules: what a request carries, the reference
outputs an artifact is verified against, and timing one exporter."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.npz import load_arrays, save_arrays
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.stages.export.artifacts import ARTIFACTS, Artifact, feed, path_of, size_on_disk
from bakeoff.twins.canonical import Weights, load_weights

REFERENCE = "reference"


@dataclass
class ExportJob:
    graph: Graph
    weights: Weights
    root: Path
    data: dict[str, np.ndarray]
    request: dict[str, Any]

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> ExportJob:
        return cls(
            build_graph(ModelSpec.model_validate(request["spec"])),
            load_weights(Path(request["weights"])),
            Path(request["root"]),
            load_arrays(request["data"]),
            request,
        )

    @property
    def threads(self) -> int:
        return int(self.request["threads"])

    def inputs(self, split: str, artifact: Artifact | None = None, n: int | None = None) -> list[np.ndarray]:
        xs = [self.data[f"x_{split}/{i}"][:n] for i in range(len(self.graph.inputs))]
        return feed(artifact, xs) if artifact else xs


def clear_folder(root: Path, name: str) -> None:
    """A fresh folder for an artifact: what an earlier attempt left there is removed first."""
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def reference_path(root: Path, origin: str) -> Path:
    return root / f"reference-{origin}.npz"


def save_reference(job: ExportJob, origin: str, outputs: np.ndarray) -> dict[str, Any]:
    save_arrays(reference_path(job.root, origin), {"outputs": outputs})
    return {"samples": len(outputs)}


def timed_export(root: Path, name: str, export: Callable[[Path], dict[str, Any] | None]) -> dict[str, Any]:
    """Runs one exporter into the artifact's fresh folder; the meta says how long it took and its size."""
    clear_folder(root, name)
    path = path_of(root, ARTIFACTS[name])
    started = time.perf_counter()
    extra = export(path) or {}
    seconds = time.perf_counter() - started
    return {"export_seconds": seconds, "size_bytes": size_on_disk(path), "path": str(path), **extra}


def in_chunks(
    predict: Callable[[list[np.ndarray]], np.ndarray], xs: list[np.ndarray], size: int = 256
) -> np.ndarray:
    n = len(xs[0])
    return np.concatenate([predict([x[i : i + size] for x in xs]) for i in range(0, n, size)])
