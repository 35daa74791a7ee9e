"""The in-process answer a served model must match: the SavedModel run by TensorFlow itself, in its own
process (TensorFlow never shares the stage's process). `python -m bakeoff.stages.serve.reference
SAVEDMODEL IN.npz OUT.npz`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.npz import load_arrays, save_arrays


def reference_outputs(savedmodel: Path, inputs: dict[str, np.ndarray], timeout: float = 300) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="bakeoff-ref-") as tmp:
        src, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        save_arrays(src, inputs)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, "-m", "bakeoff.stages.serve.reference", str(savedmodel), str(src), str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if done.returncode != 0:
            raise BakeoffError(f"the in-process reference failed: {done.stderr.strip()[-500:]}")
        return load_arrays(out)["outputs"]


def main() -> None:
    import tensorflow as tf

    savedmodel, src, out = sys.argv[1:4]
    fn = tf.saved_model.load(savedmodel).signatures["serving_default"]
    result = fn(**{k: tf.constant(v) for k, v in load_arrays(src).items()})
    save_arrays(out, {"outputs": next(iter(result.values())).numpy()})


if __name__ == "__main__":
    main()
