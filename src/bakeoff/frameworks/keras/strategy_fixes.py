"""The Keras 3 workarounds `fit` needs under MultiWorkerMirroredStrategy, in one place, by version.

Keras 3 (3.15 with TF 2.21, and since 3.0: keras-team/keras#20585) cannot `fit` under
MultiWorkerMirroredStrategy with two or more workers:

- `symbolic_build`: `TensorFlowTrainer._maybe_symbolic_build` reduces the first distributed batch with
  `strategy.reduce("MEAN", ..., axis=None)`, which under collective ops hands a PerReplica to
  `convert_to_tensor` ("unsupported type PerReplica"). The fix builds from the first replica's batch.
- `scalar_logs`: `reduce_per_replica` takes the multi-worker branch and reduces the step's scalar
  logs with `strategy.reduce("MEAN", v, axis=0)` ("Invalid reduction dimension 0 for input with 0
  dimensions"). The fix reduces them with axis=None: the mean of the replicas' losses, each over its
  equal slice, is the global batch's mean loss.

`apply()` patches only Keras versions in FIXED_IN's range and returns the names of the fixes it
applied, which the run records. tests/frameworks/keras/test_strategy_fixes.py runs `fit` under two
workers without each fix to prove it is still needed; when Keras fixes a bug, that test fails and the
fix's version bound moves here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

FIXES = ("symbolic_build", "scalar_logs")
# Keras versions the fixes are applied to: [first, last) as (major, minor).
NEEDED_FROM, NEEDED_BEFORE = (3, 0), (4, 0)


def keras_version() -> tuple[int, int]:
    major, minor = keras.__version__.split(".")[:2]
    return int(major), int(minor)


def needed() -> bool:
    return NEEDED_FROM <= keras_version() < NEEDED_BEFORE


def apply(fixes: tuple[str, ...] = FIXES) -> list[str]:
    """Patches Keras' TensorFlow trainer for `fixes` (idempotent); returns those applied."""
    if not needed():
        return []
    from keras.src.backend.tensorflow import trainer

    patches: dict[str, Callable[[Any], None]] = {
        "symbolic_build": _fix_symbolic_build,
        "scalar_logs": _fix_scalar_logs,
    }
    applied = []
    for name in fixes:
        patches[name](trainer)
        applied.append(name)
    return applied


def _fix_symbolic_build(trainer: Any) -> None:
    from keras.src import tree

    cls = trainer.TensorFlowTrainer
    if getattr(cls._maybe_symbolic_build, "_bakeoff", False):
        return

    def _maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        if self._distribute_strategy is None:
            return
        strategy = self.distribute_strategy
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(
                    lambda x: (
                        strategy.experimental_local_results(x)[0]
                        if isinstance(x, tf.distribute.DistributedValues)
                        else x
                    ),
                    next(it),
                )
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    _maybe_symbolic_build._bakeoff = True  # type: ignore[attr-defined]
    cls._maybe_symbolic_build = _maybe_symbolic_build


def _fix_scalar_logs(trainer: Any) -> None:
    original = trainer.reduce_per_replica
    if getattr(original, "_bakeoff", False):
        return
    from keras.src import tree

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._bakeoff = True  # type: ignore[attr-defined]
    trainer.reduce_per_replica = reduce_per_replica
