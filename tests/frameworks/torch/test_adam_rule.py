"""torch's Adam with lr and eps reset before each step (EpsilonHatAdam) is Keras' Adam ('epsilon hat'):
checked against Keras' update written out by hand, on random tensors, without workers or TensorFlow."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bakeoff.frameworks.torch.train import EpsilonHatAdam, keras_alpha
from bakeoff.stages.train.shared import ADAM

LR = 1e-3
STEPS = 50
SHAPES = [(64, 32), (32,), (6, 1, 5, 5)]
# Gradient scales from large to far below epsilon, where the two rules differ most.
SCALES = [1e-2, 1e-6, 1e-7]


def problem() -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [
        [(scale * rng.standard_normal(s)).astype(np.float32) for s, scale in zip(SHAPES, SCALES, strict=True)]
        for _ in range(STEPS)
    ]
    return params, grads


def keras_adam(
    params: list[np.ndarray],
    grads: list[list[np.ndarray]],
    dtype: type,
    alpha_of: Callable[[int], float] | None = None,
) -> list[np.ndarray]:
    """keras.optimizers.Adam.update_step (Keras 3), op for op, every value in `dtype`; `alpha_of(t)`, when
    given, replaces Keras' step size alpha_t."""
    b1, b2, eps, lr, one = (dtype(x) for x in (ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"], LR, 1))
    var = [p.astype(dtype) for p in params]
    m = [np.zeros_like(p) for p in var]
    v = [np.zeros_like(p) for p in var]
    for t, step_grads in enumerate(grads, 1):
        local_step = dtype(t)
        alpha = lr * np.sqrt(one - b2**local_step) / (one - b1**local_step)
        if alpha_of is not None:
            alpha = dtype(alpha_of(t))
        for i, grad in enumerate(step_grads):
            g = grad.astype(dtype)
            m[i] += (g - m[i]) * (one - b1)
            v[i] += (g * g - v[i]) * (one - b2)
            var[i] -= m[i] * alpha / (np.sqrt(v[i]) + eps)
    return var


def torch_adam(
    optimizer: type[torch.optim.Adam],
    params: list[np.ndarray],
    grads: list[list[np.ndarray]],
    dtype: torch.dtype,
    **kwargs: float,
) -> list[np.ndarray]:
    tensors = [torch.nn.Parameter(torch.tensor(p, dtype=dtype)) for p in params]
    opt = optimizer(tensors, lr=LR, **kwargs)
    for step_grads in grads:
        for p, g in zip(tensors, step_grads, strict=True):
            p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
    return [p.detach().numpy() for p in tensors]


def moved_diff(a: list[np.ndarray], b: list[np.ndarray], start: list[np.ndarray]) -> float:
    """Largest difference of the distance travelled, relative to the largest distance travelled."""
    return max(
        float(np.max(np.abs(x - y)) / np.max(np.abs(y - s.astype(y.dtype))))
        for x, y, s in zip(a, b, start, strict=True)
    )


def rel_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(y))) for x, y in zip(a, b, strict=True))


def test_keras_alpha_is_float32_as_keras_computes_it() -> None:
    b1, b2 = ADAM["beta_1"], ADAM["beta_2"]
    for t in (1, 2, 10, 1000):
        exact = LR * np.sqrt(1 - b2**t) / (1 - b1**t)
        f32 = np.float32
        expected = f32(LR) * np.sqrt(f32(1) - f32(b2) ** f32(t)) / (f32(1) - f32(b1) ** f32(t))
        assert keras_alpha(LR, b1, b2, t) == float(expected)
        # beta_2 = 0.999 rounds up to 0.99900001 in float32: Keras' alpha_t is ~6e-6 below the exact one.
        assert 3e-6 < 1 - keras_alpha(LR, b1, b2, t) / exact < 2e-5


def test_torch_steps_are_keras_rule_exactly_in_float64() -> None:
    params, grads = problem()
    alpha = lambda t: keras_alpha(LR, ADAM["beta_1"], ADAM["beta_2"], t)  # noqa: E731
    keras = keras_adam(params, grads, np.float64, alpha)
    ours = torch_adam(EpsilonHatAdam, params, grads, torch.float64)
    stock = torch_adam(torch.optim.Adam, params, grads, torch.float64, eps=ADAM["epsilon"])
    # The algebra is exact: only float64 rounding is left (measured 7e-15 of the distance moved).
    assert moved_diff(ours, keras, params) < 1e-12
    # Stock torch Adam with the same epsilon is another optimizer where gradients are small.
    assert moved_diff(stock, keras, params) > 1e-2


def test_torch_steps_match_keras_rule_to_float32_rounding() -> None:
    params, grads = problem()
    keras = keras_adam(params, grads, np.float32)
    ours = torch_adam(EpsilonHatAdam, params, grads, torch.float32)
    stock = torch_adam(torch.optim.Adam, params, grads, torch.float32, eps=ADAM["epsilon"])
    assert ours[0].dtype == keras[0].dtype == np.float32
    # About one float32 ulp of the weights after 50 steps (measured 1.6e-7); stock Adam: 1e-4 to 5e-3.
    assert rel_diff(ours, keras) < 5e-7
    assert rel_diff(stock, keras) > 1e-5


def test_lr_and_eps_follow_torch_own_step_count() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = EpsilonHatAdam([p], lr=LR)
    b1, b2 = ADAM["beta_1"], ADAM["beta_2"]
    for t in (1, 2, 3):
        p.grad = torch.ones(3)
        opt.step()
        group = opt.param_groups[0]
        assert int(opt.state[p]["step"]) == t
        assert group["eps"] == ADAM["epsilon"] / np.sqrt(1 - b2**t)
        # torch steps by lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + eps): Keras' alpha_t.
        step_size = group["lr"] / (1 - b1**t) * np.sqrt(1 - b2**t)
        assert abs(step_size / keras_alpha(LR, b1, b2, t) - 1) < 1e-15
    assert group["betas"] == (b1, b2) and group["weight_decay"] == 0.0
    # Past the steps worked out in advance, each step works out its own lr and eps the same way.
    opt.t = EpsilonHatAdam.PRECOMPUTED_STEPS
    opt.step()
    t = EpsilonHatAdam.PRECOMPUTED_STEPS + 1
    assert group["eps"] == ADAM["epsilon"] / np.sqrt(1 - b2**t)
    assert abs(group["lr"] / (1 - b1**t) * np.sqrt(1 - b2**t) / keras_alpha(LR, b1, b2, t) - 1) < 1e-15
