"""ONNX Runtime with one execution provider (CPU, CUDA or TensorRT, from the registry's settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from bakeoff.runtimes import Bindable, Call, LoadOptions, Predict


def session(path: Path, threads: int, provider: str = "CPUExecutionProvider") -> ort.InferenceSession:
    if provider not in ort.get_available_providers():
        raise RuntimeError(
            f"ONNX Runtime here has no {provider} (available: {', '.join(ort.get_available_providers())})"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # fairness rule 4: the same threads as every runtime
    opts.inter_op_num_threads = threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=[provider])
    # ORT falls back to another provider when one fails to start: that would time the wrong thing.
    if sess.get_providers()[0] != provider:
        raise RuntimeError(f"ONNX Runtime fell back from {provider} to {', '.join(sess.get_providers())}")
    return sess


def load(path: Path, options: LoadOptions) -> Predict:
    sess = session(path, options.threads, options.settings.get("provider", "CPUExecutionProvider"))
    names = [i.name for i in sess.get_inputs()]

    run = sess.run

    def predict(inputs: list[np.ndarray]) -> np.ndarray:
        # run() takes and returns host arrays, so a GPU provider's copies are inside the call.
        return run(None, dict(zip(names, inputs, strict=True)))[0]

    def bind(inputs: list[np.ndarray]) -> Call:
        feed = dict(zip(names, inputs, strict=True))
        return lambda: run(None, feed)[0]

    return Bindable(predict, bind)
