"""What differs between Keras 3's backends for bakeoff's Keras workers: threads, device, the matmul probe,
gradients and a compiled predict. Everything else in `frameworks/keras` is backend-neutral Keras code.

The backend is fixed per process by KERAS_BACKEND, set when the worker starts (`measure.isolation`):
'tensorflow' for the `keras` worker, 'torch' for `keras-torch`, 'jax' for `keras-jax`. Each backend's
library is imported here only inside its own branch, so a Keras-on-PyTorch worker never loads TensorFlow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from bakeoff.errors import BakeoffError

Predict = Callable[[list[np.ndarray]], np.ndarray]


def name() -> str:
    """'tensorflow', 'torch' or 'jax'."""
    return str(keras.backend.backend())


def configure(threads: int) -> dict[str, Any]:
    """Same threads as every other framework (fairness rule 4), fp32 with TF32 off (rule 5); returns
    what was set, with the versions that ran."""
    keras.utils.set_random_seed(0)
    backend = name()
    meta: dict[str, Any] = {"keras": keras.__version__, "keras_backend": backend, "tf32": False}
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # only settable before TensorFlow initialises; keep what is set
            pass
        tf.config.experimental.enable_tensor_float_32_execution(False)
        return {
            **meta,
            "tensorflow": tf.__version__,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        }
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # settable once, before any inter-op work
            torch.set_num_interop_threads(threads)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return {
            **meta,
            "torch": torch.__version__,
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
        }
    if backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")  # fp32 matmuls, no TF32/bf16 passes
        return {
            **meta,
            "jax": jax.__version__,
            "intra_op_threads": None,
            "threads_note": "not set: XLA's CPU client sizes its own thread pool (one per core); "
            "JAX has no per-process thread setting",
        }
    raise BakeoffError(f"KERAS_BACKEND '{backend}': bakeoff runs Keras on tensorflow, torch or jax")


def device(device_name: str) -> contextlib.AbstractContextManager[Any]:
    """Where the worker's Keras work runs. Keras on PyTorch and on JAX run on the CPU here."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        if device_name == "cuda":
            if not tf.config.list_physical_devices("GPU"):
                raise BakeoffError(
                    "--device cuda: this TensorFlow build sees no GPU (tensorflow-cpu has none; "
                    "install tensorflow[and-cuda])"
                )
            return tf.device("/GPU:0")
        return tf.device("/CPU:0")
    if device_name != "cpu":
        raise BakeoffError(f"--device {device_name}: Keras on {backend} is measured on the CPU only")
    return contextlib.nullcontext()


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def matmul(n: int) -> tuple[Callable[[], Any], Callable[[Any], Any]]:
    """An n x n fp32 matmul in the backend's own kernels, and the sync that finishes it (reading one
    element back forces the product without timing a full device-to-host copy)."""
    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.normal(size=(n, n)).astype(np.float32))
    b = keras.ops.convert_to_tensor(rng.normal(size=(n, n)).astype(np.float32))
    return (lambda: keras.ops.matmul(a, b)), (lambda c: to_numpy(c[0, 0]))


def loss_and_gradients(
    model: keras.Model, loss_object: Any, feed: Any, target: np.ndarray
) -> tuple[float, list[np.ndarray | None]]:
    """One training-mode forward pass, its loss and the gradient of every trainable variable (None where
    the loss does not reach it), each backend differentiating its own way."""
    backend, variables = name(), model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_object(target, model(feed, training=True))
        grads = tape.gradient(loss, variables)
        # Embedding gradients arrive as IndexedSlices; densify them to compare element by element.
        return float(loss), [None if g is None else np.asarray(tf.convert_to_tensor(g)) for g in grads]
    if backend == "torch":
        import torch

        loss = loss_object(target, model(feed, training=True))
        params = [v.value for v in variables]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return float(loss), [None if g is None else g.detach().cpu().numpy() for g in grads]
    import jax

    frozen = [v.value for v in model.non_trainable_variables]

    def loss_of(trainable: list[Any]) -> Any:
        output, _ = model.stateless_call(trainable, frozen, feed, training=True)
        return loss_object(target, output)

    value, grads = jax.value_and_grad(loss_of)([v.value for v in variables])
    return float(value), [np.asarray(g) for g in grads]


def predictor(model: keras.Model) -> Predict:
    """Host arrays in, host array out, compiled as Keras' own `predict` compiles it on each backend:
    a tf.function on TensorFlow, eager under no_grad on PyTorch (Keras' default there), jax.jit on JAX."""
    backend = name()

    def feed(inputs: list[np.ndarray]) -> Any:
        return inputs[0] if len(inputs) == 1 else inputs

    if backend == "tensorflow":
        import tensorflow as tf

        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda inputs: call(feed(inputs)).numpy()
    if backend == "torch":
        import torch

        def run(inputs: list[np.ndarray]) -> np.ndarray:
            with torch.no_grad():
                return model(feed(inputs), training=False).cpu().numpy()

        return run
    import jax

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    jitted = jax.jit(lambda t, f, x: model.stateless_call(t, f, x, training=False)[0])
    return lambda inputs: np.asarray(jitted(trainable, frozen, feed(inputs)))


def versions() -> dict[str, str]:
    backend = name()
    module = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}[backend]
    return {"keras": keras.__version__, "keras_backend": backend, backend: __import__(module).__version__}
