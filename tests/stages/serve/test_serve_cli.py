"""`bakeoff serve` as a user runs it: a server on a run's artifacts, answered with plain urllib, then
Ctrl-C (SIGINT) stops it and everything it started; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BAKEOFF, bakeoff
from tests.stages.serve.servers.conftest import mentioning

pytestmark = pytest.mark.slow


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            return proc.stdout.readline()
        if proc.poll() is not None:
            break
    raise AssertionError(f"no endpoint line within {timeout} s (exit {proc.poll()})")


def test_serve_answers_a_plain_client_and_ctrl_c_leaves_nothing(exported: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(exported, tmp_path / exported.name))  # the shared run stays untouched
    cmd = [str(BAKEOFF), "serve", "simplenet", "--server", "tfserving", "--run", str(run), "--json"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        info = json.loads(_first_line(proc, timeout=180))
        assert info["implementation"] == "TF Serving API, bakeoff's implementation"
        rest = next(e for e in info["endpoints"] if e["protocol"] == "tfserving-rest")
        assert rest["address"].startswith("http://127.0.0.1:")
        x = np.load(run / "artifacts" / "data.npz")["x_val/0"][:2]
        request = urllib.request.Request(
            f"{rest['address']}/v1/models/simplenet:predict",
            data=json.dumps({"instances": x.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = np.asarray(json.loads(reply.read())["predictions"], dtype=np.float32)
        reference = np.load(run / "artifacts" / "reference-keras.npz")["outputs"][:2]
        np.testing.assert_allclose(answer, reference, atol=1e-4)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the command
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert mentioning(str(run / "serve")) == []


def test_serve_bad_input_is_one_line(tmp_path: Path) -> None:
    unknown = bakeoff("serve", "simplenet", "--server", "nginx", "--run", str(tmp_path))
    assert unknown.returncode == 2 and "nginx" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    empty = bakeoff("serve", "simplenet", "--server", "tfserving", "--run", str(tmp_path))
    assert empty.returncode == 2 and "no artifacts/ folder" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1, empty.stderr
