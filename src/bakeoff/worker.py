"""Entry point of a framework worker process: `python -m bakeoff.worker --serve` (long-lived: one job
per request path read from stdin), `python -m bakeoff.worker REQUEST.json` (one job) or
`python -m bakeoff.worker --zygote` (a template that forks `--serve` workers: measure.zygote).

A worker imports exactly one framework; for each job it writes REQUEST.npz (arrays) and
REQUEST.result.json (metadata or the error). The parent never imports torch or TensorFlow itself.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.frameworks import package
from bakeoff.npz import load_arrays, save_arrays
from bakeoff.spec.graph import build_graph
from bakeoff.spec.schema import ModelSpec
from bakeoff.twins.byo import USER_JOBS
from bakeoff.twins.canonical import load_weights


def _parity(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    module = importlib.import_module(f"bakeoff.frameworks.{package(request['framework'])}.parity")
    graph = build_graph(ModelSpec.model_validate(request["spec"]))
    weights = load_weights(Path(request["weights"]))
    batch = load_arrays(request["batch"])
    inputs = [batch[f"input/{i.name}"] for i in graph.inputs]
    return module.collect(graph, weights, inputs, batch["target"], request["threads"])


def _framework_job(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Jobs whose whole logic lives in bakeoff.frameworks.<framework>.<job>.collect(request)."""
    module = importlib.import_module(f"bakeoff.frameworks.{package(request['framework'])}.{request['job']}")
    return module.collect(request)


def _shared_job(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Jobs that run in whichever worker their runtime needs: bakeoff.<module>.collect(request)."""
    module = importlib.import_module(f"bakeoff.{SHARED[request['job']]}")
    return module.collect(request)


SHARED = {
    "quantize": "stages.export.quantize",
    "verify": "stages.export.verify",
    "infer": "stages.infer.inference",
}
JOBS = {
    "parity": _parity,
    **dict.fromkeys((*USER_JOBS, "train", "pipeline", "fit", "export", "debug"), _framework_job),
    **dict.fromkeys(SHARED, _shared_job),
}


# Modules a pooled worker is kept from importing, by framework. 'native' imports neither framework:
# some of ONNX Runtime's tools would import torch whenever it is installed (onnxruntime.tools does, for
# quant_pre_process: 2 s inside the first int8 export's time). Keras imports scikit-learn, pandas and
# matplotlib whenever they are installed, for wrappers, data adapters and plots bakeoff never uses:
# ~1.5 s of the worker's start-up and ~110 MB of RSS every Keras case would carry. Marked absent,
# `import` fails and `find_spec` says None, and the libraries do without them. Keras on PyTorch or JAX
# never imports TensorFlow either (it would for tf.data; bakeoff feeds numpy): no TensorFlow thread pool
# runs beside the backend that is measured.
_KERAS_EXTRAS = ("sklearn", "pandas", "matplotlib")
BLOCKED = {
    "native": ("torch", "tensorflow", "keras"),
    "keras": _KERAS_EXTRAS,
    "keras-torch": (*_KERAS_EXTRAS, "tensorflow", "jax"),
    "keras-jax": (*_KERAS_EXTRAS, "tensorflow", "torch"),
}


def _block(request: dict[str, Any]) -> None:
    if request.get("job") in USER_JOBS:  # a user's own model file may use anything
        return
    for name in BLOCKED.get(request.get("framework", ""), ()):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def _forget_kept(request: dict[str, Any]) -> None:
    """Trained models kept for the training stage's timing rounds go with the first job of any other
    kind: held through export and inference they would count in those cases' memory."""
    shared = sys.modules.get("bakeoff.stages.train.shared")
    if shared is not None and request.get("job") != "train":
        shared.forget_kept()


def main(argv: list[str]) -> int:
    request_path = Path(argv[0])
    request = json.loads(request_path.read_text())
    result_path = request_path.with_suffix(".result.json")
    _block(request)
    _forget_kept(request)
    try:
        arrays, meta = JOBS[request["job"]](request)
        save_arrays(request_path.with_suffix(".npz"), arrays)
        result: dict[str, Any] = {"ok": True, "meta": meta}
    except BakeoffError as exc:
        result = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
    except Exception as exc:
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "kind": "crash",
            "traceback": traceback.format_exc(),
        }
    # Atomically: the parent takes the file's existence to mean the job is done.
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, result_path)
    return 0 if result["ok"] else 3


def serve() -> int:
    """Runs one job per request path read from stdin, until stdin closes: the pool's long-lived mode."""
    for line in sys.stdin:
        if line.strip():
            main([line.strip()])
    return 0


def zygote() -> int:
    """A template process that fresh workers of one framework are forked from (measure.zygote)."""
    from bakeoff.measure.zygote import ZYGOTE_FRAMEWORK_ENV, serve_zygote

    _block({"framework": os.environ[ZYGOTE_FRAMEWORK_ENV], "job": "zygote"})
    return serve_zygote(serve)


if __name__ == "__main__":
    modes = {"--serve": serve, "--zygote": zygote}
    sys.exit(modes[sys.argv[1]]() if sys.argv[1:2] and sys.argv[1] in modes else main(sys.argv[1:]))
