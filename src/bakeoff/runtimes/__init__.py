"""Inference runtimes behind one small interface, in one registry: a new runtime is one module with a
`load` function and one line in RUNTIMES.

`load(path, artifact, options) -> Predict` returns a callable that takes host numpy inputs and returns
the host numpy output: host<->device copies are inside every runtime's call (fairness rule 8), so a
GPU runtime is charged for moving its inputs in and its output out, like a server would be.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from bakeoff.errors import check_choices

Predict = Callable[[list[np.ndarray]], np.ndarray]
Call = Callable[[], np.ndarray]


class Bindable:
    """A Predict that can also fix its inputs once (`bind`), as a benchmark loop anyone would write
    does: the feed dict built, the shapes checked, the interpreter resized before the clock starts, so
    a timed call is the runtime's own calls and nothing else. At batch 1 a runtime call takes 8-40 us
    here, and per-call checks in the wrapper showed as a 6-9% bias against a plain loop
    (benchmarks/agreement.py)."""

    __slots__ = ("_predict", "bind")

    def __init__(self, predict: Predict, bind: Callable[[list[np.ndarray]], Call]) -> None:
        self._predict = predict
        self.bind = bind

    def __call__(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self._predict(inputs)


def bind(predict: Predict, inputs: list[np.ndarray]) -> Call:
    """A zero-argument call of `predict` on `inputs`: the runtime's bound fast path where it has one.
    Runtimes whose calls take hundreds of microseconds (TensorFlow's) keep the plain partial; its
    ~0.3 us is well under their run-to-run spread."""
    if isinstance(predict, Bindable):
        return predict.bind(inputs)
    return partial(predict, inputs)


# The worker kinds, in the order their cases take turns (measure.conduct): never two side by side.
WORKERS = ("torch", "keras", "keras-torch", "keras-jax", "native")


@dataclass(frozen=True)
class LoadOptions:
    threads: int
    spec: dict[str, Any] | None = None  # the model spec, for runtimes that rebuild the twin
    settings: dict[str, Any] = field(default_factory=dict)  # the registry entry's own settings


@dataclass(frozen=True)
class Runtime:
    name: str
    # 'torch', 'keras', 'keras-torch', 'keras-jax' (Keras 3 on that backend) or 'native' (a process that
    # imports neither framework)
    worker: str
    formats: tuple[str, ...]  # artifact formats it runs
    module: str
    description: str
    needs: str  # the import that must work, and what to install when it does not
    install: str
    gpu: bool = False
    fp32_only: bool = False  # GPU providers are measured on the fp32 artifacts only
    backends: bool = False  # Keras on each backend: runs only when asked for (--backends), not in 'all'
    settings: dict[str, Any] = field(default_factory=dict)

    def load_module(self) -> ModuleType:
        return importlib.import_module(f"bakeoff.runtimes.{self.module}")

    def missing(self) -> str:
        """Why this runtime cannot run here, or '' when it can."""
        if importlib.util.find_spec(self.needs) is None:
            return f"{self.needs} is not installed (pip install {self.install})"
        return ""


_TORCH: dict[str, Any] = {"needs": "torch", "install": "torch==2.13.0", "worker": "torch"}
_TF: dict[str, Any] = {"needs": "tensorflow", "install": "tensorflow-cpu", "worker": "keras"}
_KERAS_TWIN: dict[str, Any] = {"formats": ("keras-twin",), "module": "keras_twin", "backends": True}
_ORT: dict[str, Any] = {
    "needs": "onnxruntime",
    "install": "onnxruntime",
    "worker": "native",
    "module": "onnxruntime",
}

RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in [
        Runtime(
            "torch-eager",
            formats=("twin",),
            module="torch_eager",
            description="PyTorch eager, inference_mode",
            **_TORCH,
        ),
        Runtime(
            "torch-compile",
            formats=("twin",),
            module="torch_compile",
            description="torch.compile(model), inference_mode",
            **_TORCH,
        ),
        Runtime(
            "torch-eager-cuda",
            formats=("twin",),
            module="torch_eager",
            description="PyTorch eager on the GPU, inference_mode",
            gpu=True,
            settings={"device": "cuda"},
            **_TORCH,
        ),
        Runtime(
            "torch-compile-cuda",
            formats=("twin",),
            module="torch_compile",
            description="torch.compile(model) on the GPU, inference_mode",
            gpu=True,
            settings={"device": "cuda"},
            **_TORCH,
        ),
        Runtime(
            "exported-program",
            formats=("pt2",),
            module="exported_program",
            description="torch.export.load(...).module()",
            **_TORCH,
        ),
        Runtime(
            "torchscript",
            formats=("torchscript",),
            module="torchscript",
            description="torch.jit.load",
            **_TORCH,
        ),
        Runtime(
            "tf-savedmodel",
            formats=("savedmodel",),
            module="tf_savedmodel",
            description="tf.saved_model.load, serving_default signature (graph)",
            **_TF,
        ),
        Runtime(
            "tf-xla",
            formats=("savedmodel",),
            module="tf_xla",
            description="the SavedModel's serve function under tf.function(jit_compile=True)",
            **_TF,
        ),
        Runtime(
            "keras-tf",
            description="the Keras twin on TensorFlow, called as Keras' predict compiles it (tf.function)",
            **{**_TF, **_KERAS_TWIN},
        ),
        Runtime(
            "keras-torch",
            description="the Keras twin on PyTorch (KERAS_BACKEND=torch), eager under no_grad as Keras' "
            "predict runs it",
            needs="torch",
            install="torch==2.13.0",
            worker="keras-torch",
            **_KERAS_TWIN,
        ),
        Runtime(
            "keras-jax",
            description="the Keras twin on JAX (KERAS_BACKEND=jax), its stateless call under jax.jit as "
            "Keras' predict compiles it",
            needs="jax",
            install="'bakeoff[backends]' (jax[cpu])",
            worker="keras-jax",
            **_KERAS_TWIN,
        ),
        Runtime(
            "onnxruntime",
            formats=("onnx",),
            description="ONNX Runtime, CPU execution provider",
            settings={"provider": "CPUExecutionProvider"},
            **_ORT,
        ),
        Runtime(
            "onnxruntime-cuda",
            formats=("onnx",),
            description="ONNX Runtime, CUDA execution provider",
            gpu=True,
            fp32_only=True,
            settings={"provider": "CUDAExecutionProvider"},
            **_ORT,
        ),
        Runtime(
            "onnxruntime-tensorrt",
            formats=("onnx",),
            description="ONNX Runtime, TensorRT execution provider",
            gpu=True,
            fp32_only=True,
            settings={"provider": "TensorrtExecutionProvider"},
            **_ORT,
        ),
        Runtime(
            "onnx2torch",
            formats=("onnx2torch",),
            module="onnx2torch",
            description="an ONNX file converted to a torch.nn.Module by onnx2torch, eager",
            needs="onnx2torch",
            install="--no-deps onnx2torch==1.5.15",
            worker="torch",
        ),
        Runtime(
            "litert",
            formats=("tflite",),
            module="litert",
            description="LiteRT interpreter (ai_edge_litert), XNNPACK",
            needs="ai_edge_litert",
            install="ai-edge-litert",
            worker="native",
        ),
    ]
}


DEFAULT_RUNTIMES = tuple(name for name, r in RUNTIMES.items() if not r.backends)


def backend_runtimes(backends: list[str]) -> list[str]:
    """Keras on TensorFlow (the baseline, on the same artifact) and on each of `backends` ('torch', 'jax')."""
    return ["keras-tf", *(f"keras-{b}" for b in backends)]


def check_runtimes(names: list[str]) -> list[str]:
    return check_choices("--runtimes", "runtime", names, RUNTIMES)


def load(runtime: Runtime, path: Path, options: LoadOptions) -> Predict:
    options = LoadOptions(options.threads, options.spec, {**runtime.settings, **options.settings})
    predict: Predict = runtime.load_module().load(path, options)
    return predict
