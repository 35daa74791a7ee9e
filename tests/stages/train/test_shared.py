"""What the training workers share, without a worker: the one-ulp nudge of the drift probe."""

from __future__ import annotations

import numpy as np

from bakeoff.spec.load import resolve
from bakeoff.stages.train.shared import Setup, TrainOptions, has_dropout
from bakeoff.twins.canonical import canonical_weights


def test_nudged_moves_every_nonzero_weight_by_exactly_one_ulp_either_way() -> None:
    graph = resolve("simplenet")
    weights = canonical_weights(graph, 0)
    setup = Setup(graph, weights, {}, np.zeros((1, 4), np.int64), TrainOptions())
    nudged = setup.nudged()
    assert nudged.weights is not setup.weights and nudged.graph is setup.graph
    for node, arrays in weights.items():
        for key, a in arrays.items():
            b = nudged.weights[node][key]
            assert b.dtype == a.dtype == np.float32
            moved = a != 0
            up = np.nextafter(a, np.float32(np.inf))
            down = np.nextafter(a, np.float32(-np.inf))
            assert np.all((b == up) | (b == down))
            assert np.all(b[~moved] == 0)  # zero biases stay zero
            assert np.all(b[moved] != a[moved])
            if moved.sum() > 100:  # a coin per weight, not one direction for all
                assert 0.4 < np.mean(b[moved] > a[moved]) < 0.6
    assert setup.weights["layer1"]["kernel"] is weights["layer1"]["kernel"]  # the original is untouched
    again = setup.nudged().weights["layer1"]["kernel"]
    assert np.array_equal(again, nudged.weights["layer1"]["kernel"])  # seeded: the same every run


def test_has_dropout() -> None:
    assert not has_dropout(resolve("simplenet"))
    assert has_dropout(resolve("transformer-tiny"))
