"""The Keras 3 MultiWorkerMirroredStrategy workarounds are still needed: two real workers on 127.0.0.1
run `fit` without any fix, with the first only, then with both. When Keras fixes a bug, the step
expected to fail passes, this test fails, and strategy_fixes' version bound moves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bakeoff.process_group import free_port, stop_group

PROBE = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np, tensorflow as tf
    from bakeoff.frameworks.keras import strategy_fixes

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x.sum(1) > 0).astype("int64")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = data.with_options(options)
    outcome = {"needed": strategy_fixes.needed()}
    for fixes in ((), ("symbolic_build",), strategy_fixes.FIXES):
        strategy_fixes.apply(fixes)
        with strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
            model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        try:
            model.fit(data, epochs=1, verbose=0)
            outcome["+".join(fixes) or "none"] = "ok"
        except Exception as exc:
            outcome["+".join(fixes) or "none"] = f"{type(exc).__name__}: {exc}"[:300]
    open(sys.argv[1], "w").write(json.dumps(outcome))
    """
)


@pytest.mark.slow
def test_each_fix_is_still_needed_and_both_make_fit_work(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    cluster = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    procs = []
    try:
        for i in range(2):
            config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}
            env = {"TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
            env["PYTHONPATH"] = ":".join(sys.path)
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script), str(tmp_path / f"out{i}.json")],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp_path / f"log{i}.txt").open("w"),
                    start_new_session=True,
                )
            )
        deadline = time.perf_counter() + 240
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
    finally:
        for proc in procs:
            stop_group(proc)
    outcome = json.loads((tmp_path / "out0.json").read_text())
    assert outcome["needed"] is True
    assert "PerReplica" in outcome["none"], outcome  # keras-team/keras#20585
    assert "Invalid reduction dimension 0" in outcome["symbolic_build"], outcome
    assert outcome["symbolic_build+scalar_logs"] == "ok", outcome
