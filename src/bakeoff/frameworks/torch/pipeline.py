"""Torch side of the input-pipeline bake-off: a DataLoader that decodes PNGs with Pillow and augments
with torch ops, one sample at a time (torchvision is not a dependency, so its transforms are not used)."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bakeoff.frameworks.torch.build import build as build_model
from bakeoff.frameworks.torch.parity import configure
from bakeoff.frameworks.torch.train import make_step
from bakeoff.frameworks.torch.weights import load_weights
from bakeoff.stages.pipeline.shared import (
    Augment,
    Workload,
    input_bound,
    read_workload,
    serve_cases,
    training_model,
)


def decode(png: bytes) -> torch.Tensor:
    """uint8 [H, W]."""
    with Image.open(io.BytesIO(png)) as image:
        # np.array copies: a read-only view would make torch warn on every sample.
        return torch.from_numpy(np.array(image, dtype=np.uint8))


def augment(image: torch.Tensor, dy: int, dx: int, flip: bool, aug: Augment) -> torch.Tensor:
    """uint8 [H, W] -> float32 [1, H, W]; the same float32 ops, in the same order, as the TF side."""
    padded = F.pad(image, (aug.pad, aug.pad, aug.pad, aug.pad))
    crop = padded[dy : dy + aug.size, dx : dx + aug.size]
    if flip:
        crop = crop.flip(-1)
    return ((crop.float() / 255.0 - aug.mean) / aug.std).unsqueeze(0)


def draw(aug: Augment) -> tuple[int, int, bool]:
    # torch's generator, not numpy's: DataLoader reseeds torch in every worker process and every pass,
    # whereas forked workers would all inherit one numpy state and draw the same crops.
    dy, dx = torch.randint(0, aug.crop_positions, (2,)).tolist()
    return dy, dx, bool(torch.rand(()) < aug.flip_p)


class PngDigits(Dataset[tuple[torch.Tensor, int]]):
    """Decodes and augments sample `i` on demand; `fixed` (dy, dx, flip lists) replaces the random draw."""

    def __init__(self, workload: Workload, aug: Augment, fixed: dict[str, list[int]] | None = None) -> None:
        self.workload = workload
        self.aug = aug
        self.fixed = fixed

    def __len__(self) -> int:
        return len(self.fixed["dy"]) if self.fixed else len(self.workload)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = decode(self.workload.image(index))
        if self.fixed:
            dy, dx, flip = self.fixed["dy"][index], self.fixed["dx"][index], bool(self.fixed["flip"][index])
        else:
            dy, dx, flip = draw(self.aug)
        return augment(image, dy, dx, flip, self.aug), int(self.workload.labels[index])


class LoaderPipeline:
    def __init__(self, loader: DataLoader[tuple[torch.Tensor, int]]) -> None:
        self.loader: DataLoader[tuple[torch.Tensor, int]] | None = loader

    def epoch(self) -> Iterable[Any]:
        assert self.loader is not None, "the pipeline is closed"
        return self.loader

    def close(self) -> None:
        # Dropping the last reference to a persistent iterator shuts its worker processes down.
        self.loader = None
        gc.collect()


def materialize(batch: Any) -> tuple[np.ndarray, np.ndarray]:
    images, labels = batch
    return images.numpy(), labels.numpy()


def build(
    case: dict[str, Any], workload: Workload, aug: Augment, batch: int
) -> tuple[LoaderPipeline, dict[str, Any]]:
    workers = case["num_workers"]
    pin = torch.cuda.is_available()  # pinned pages only pay off for a later copy to a GPU
    loader = DataLoader(
        PngDigits(workload, aug),
        batch_size=batch,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
    )
    settings = {
        "loader": "torch.utils.data.DataLoader",
        "num_workers": workers,
        "parallelism": f"{workers} loader process{'es' if workers > 1 else ''}"
        if workers
        else "calling thread",
        "prefetch_factor": loader.prefetch_factor,
        "persistent_workers": workers > 0,
        "pin_memory": pin,
        "multiprocessing_context": "default (fork on Linux)" if workers else None,
        "loader_process_threads": 1 if workers else None,  # DataLoader sets 1 thread per worker process
        "decode": "Pillow (PIL.Image.open, np.array)",
        "augment_ops": "torch, per sample",
        "layout": "NCHW",
        "device": "cpu",
    }
    return LoaderPipeline(loader), settings


def probe(workload: Workload, aug: Augment, fixed: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """The fixed-parameter augmentation of the first images, channels-last, for the parity check."""
    dataset = PngDigits(workload, aug, fixed)
    images, labels = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    decoded = [decode(workload.image(i)).numpy() for i in range(len(dataset))]
    return {
        "probe/x": torch.stack(images).permute(0, 2, 3, 1).numpy(),
        "probe/decoded": np.stack(decoded),
        "probe/y": np.array(labels, dtype=np.int64),
    }


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    configure(request["threads"])
    torch.manual_seed(request["seed"])
    workload = read_workload(request["data"])
    aug = Augment(**request["augment"])
    return serve_cases(
        request,
        lambda case: build(case, workload, aug, request["batch"]),
        materialize,
        probe=lambda: probe(workload, aug, request["probe"]),
        fed=lambda case: fed_training(request, workload, aug, case),
    )


def fed_training(
    request: dict[str, Any], workload: Workload, aug: Augment, case: dict[str, Any]
) -> dict[str, Any]:
    graph, weights = training_model(request)
    model = build_model(graph)
    load_weights(model, graph, weights)
    model.train()
    step = make_step(model, model, graph, request["train"]["lr"])
    flat = graph.inputs[0].shape == (784,)
    pipeline, _ = build(case, workload, aug, request["batch"])
    try:
        return input_bound(request, pipeline, lambda b: step([b[0].flatten(1) if flat else b[0]], b[1]))
    finally:
        pipeline.close()
