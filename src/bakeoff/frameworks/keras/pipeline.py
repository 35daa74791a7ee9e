"""TensorFlow side of the input-pipeline bake-off: tf.data decoding with tf.io.decode_png and augmenting
with TF ops, sequentially, with AUTOTUNE parallelism and prefetch, and with the decoded images cached."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from bakeoff.errors import UsageError
from bakeoff.frameworks.keras.parity import configure
from bakeoff.frameworks.keras.train import compiled_model
from bakeoff.stages.pipeline.shared import (
    Augment,
    Workload,
    input_bound,
    read_workload,
    serve_cases,
    training_model,
)

PARALLEL = {"sequential": None, "autotune": tf.data.AUTOTUNE}
# Measured: one element at a time still keeps ~1.5 of 2 cores busy, as the independent ops inside one
# map call run side by side on the tf.data thread pool.
SEQUENTIAL = "sequential map, one element at a time (its ops may share the tf.data pool), no prefetch"


def decode(png: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, 1]."""
    return tf.io.decode_png(png, channels=1)


def augment(image: tf.Tensor, dy: tf.Tensor, dx: tf.Tensor, flip: tf.Tensor, aug: Augment) -> tf.Tensor:
    """uint8 [H, W, 1] -> float32 [H, W, 1]; the same float32 ops, in the same order, as the torch side."""
    padded = tf.pad(image, [[aug.pad, aug.pad], [aug.pad, aug.pad], [0, 0]])
    crop = padded[dy : dy + aug.size, dx : dx + aug.size, :]
    crop = tf.cond(flip, lambda: tf.reverse(crop, axis=[1]), lambda: crop)
    return (tf.cast(crop, tf.float32) / 255.0 - aug.mean) / aug.std


def draw(seed: tf.Tensor, aug: Augment) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    # Stateless ops keyed by a per-element seed from Dataset.random(rerandomize_each_iteration=True):
    # plain tf.random ops in a map repeat the same draws every pass once a global seed is set.
    offsets = tf.random.stateless_uniform(
        [2], seed=tf.stack([seed, 0]), minval=0, maxval=aug.crop_positions, dtype=tf.int32
    )
    flip = tf.random.stateless_uniform([], seed=tf.stack([seed, 1])) < aug.flip_p
    return offsets[0], offsets[1], flip


class DatasetPipeline:
    def __init__(self, dataset: tf.data.Dataset) -> None:
        self.dataset: tf.data.Dataset | None = dataset

    def epoch(self) -> Iterable[Any]:
        assert self.dataset is not None, "the pipeline is closed"
        return self.dataset

    def close(self) -> None:
        self.dataset = None  # its cache and thread pool go with it


def materialize(batch: Any) -> tuple[np.ndarray, np.ndarray]:
    images, labels = batch
    return images.numpy(), labels.numpy()


def build(
    case: dict[str, Any],
    pngs: tf.Tensor,
    labels: tf.Tensor,
    aug: Augment,
    batch: int,
    seed: int,
    threads: int,
) -> tuple[DatasetPipeline, dict[str, Any]]:
    mode = case["parallel"]
    if mode not in PARALLEL:
        raise UsageError(
            f"tf.data case {case['name']}: 'parallel' must be one of {list(PARALLEL)}, got {mode!r}"
        )
    calls = PARALLEL[mode]
    cache = bool(case["cache"])
    source = tf.data.Dataset.from_tensor_slices((pngs, labels))
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    if cache:
        # Cache the decoded bytes, never the augmented floats, so every pass draws fresh crops and flips.
        decoded = source.map(lambda png, y: (decode(png), y), num_parallel_calls=calls).cache()
        samples = tf.data.Dataset.zip(decoded, seeds).map(
            lambda item, s: (augment(item[0], *draw(s, aug), aug), item[1]), num_parallel_calls=calls
        )
    else:
        samples = tf.data.Dataset.zip(source, seeds).map(
            lambda item, s: (augment(decode(item[0]), *draw(s, aug), aug), item[1]), num_parallel_calls=calls
        )
    dataset = samples.batch(batch)
    if calls is not None:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    # tf.data's own pool otherwise sizes itself to every logical core; hold it to the shared thread count.
    options.threading.private_threadpool_size = threads
    if calls is None:
        # tf.data's default rewrites would parallelize this map and inject a prefetch behind it, which
        # would make 'sequential' no analogue of num_workers=0 at all.
        options.experimental_optimization.map_parallelization = False
        options.experimental_optimization.inject_prefetch = False
    dataset = dataset.with_options(options)
    settings = {
        "loader": "tf.data",
        "num_parallel_calls": "AUTOTUNE" if calls is not None else None,
        "parallelism": "AUTOTUNE map + prefetch" if calls is not None else SEQUENTIAL,
        "prefetch": "AUTOTUNE" if calls is not None else None,
        "cache": "decoded uint8 images, in memory; augmentation after the cache" if cache else None,
        "deterministic": True,
        "graph_rewrites": "defaults" if calls is not None else "map_parallelization and inject_prefetch off",
        "private_threadpool_size": threads,
        "decode": "tf.io.decode_png",
        "augment_ops": "tf, per sample; draws from Dataset.random + stateless ops",
        "layout": "NHWC",
        "device": "cpu",
    }
    return DatasetPipeline(dataset), settings


def probe(workload: Workload, aug: Augment, fixed: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """The fixed-parameter augmentation of the first images, through a tf.data map like the real cases."""
    n = len(fixed["dy"])
    pngs = tf.constant([workload.image(i) for i in range(n)])
    params = (
        pngs,
        tf.constant(fixed["dy"]),
        tf.constant(fixed["dx"]),
        tf.constant(np.array(fixed["flip"], dtype=bool)),
    )
    dataset = tf.data.Dataset.from_tensor_slices(params).map(
        lambda png, dy, dx, flip: (augment(decode(png), dy, dx, flip, aug), decode(png))
    )
    images, decoded = next(iter(dataset.batch(n)))
    return {
        "probe/x": images.numpy(),
        "probe/decoded": decoded.numpy()[..., 0],
        "probe/y": workload.labels[:n].astype(np.int64),
    }


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    configure(request["threads"])
    tf.random.set_seed(request["seed"])
    workload = read_workload(request["data"])
    aug = Augment(**request["augment"])
    pngs = tf.constant(workload.images())
    labels = tf.constant(workload.labels)

    def make(case: dict[str, Any]) -> tuple[DatasetPipeline, dict[str, Any]]:
        return build(case, pngs, labels, aug, request["batch"], request["seed"], request["threads"])

    return serve_cases(
        request,
        make,
        materialize,
        probe=lambda: probe(workload, aug, request["probe"]),
        fed=lambda case: fed_training(request, make(case)[0]),
    )


def fed_training(request: dict[str, Any], pipeline: DatasetPipeline) -> dict[str, Any]:
    graph, weights = training_model(request)
    model = compiled_model(graph, weights, request["train"]["lr"], "graph")
    flat = graph.inputs[0].shape == (784,)

    def step(batch: Any) -> object:
        x, y = batch
        # train_on_batch returns the loss as numpy: the step has finished (fairness rule 7).
        return model.train_on_batch(tf.reshape(x, (tf.shape(x)[0], -1)) if flat else x, y)

    try:
        return input_bound(request, pipeline, step)
    finally:
        pipeline.close()
