"""One export of simplenet (torch-onnx and torch-torchscript, trained one epoch and verified by the real
CLI) shared by the server tests, the in-process outputs it was verified against, and process checks."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest

from bakeoff.stages.export.deploy.tensors import TensorSpec
from bakeoff.stages.serve.servers import launcher
from bakeoff.stages.serve.servers.base import Launcher, ServeModel
from tests.conftest import bakeoff

# .ci/run sets this: there a server that cannot start fails its test instead of skipping it.
REQUIRE = os.environ.get("BAKEOFF_REQUIRE_SERVERS") == "1"


@dataclass(frozen=True)
class Exported:
    artifacts: Path
    x: np.ndarray  # 8 validation digits, flat (simplenet's input)
    reference: np.ndarray  # the in-process PyTorch twin's outputs on them (the export stage's reference)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    out = tmp_path_factory.mktemp("serve-export")
    args = ["--stages", "export", "--quick", "--artifacts", "torch-onnx,torch-torchscript"]
    result = bakeoff("run", "simplenet", *args, "--out", str(out), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    root = run / "artifacts"
    x = np.load(root / "data.npz")["x_val/0"][:8]
    reference = np.load(root / "reference-torch.npz")["outputs"][:8]
    return Exported(root, x, reference)


def serve_model(exported: Exported, workdir: Path, batching: bool = True) -> ServeModel:
    return ServeModel(
        name="simplenet",
        artifacts=exported.artifacts,
        inputs=[TensorSpec("x", "float32", (784,))],
        outputs=[TensorSpec("output_0", "float32", (10,))],
        workdir=workdir,
        batching=batching,
        max_batch_size=16,
        max_delay_ms=2.0,
    )


def available(name: str) -> Launcher:
    found = launcher(name)
    reason = found.unavailable()
    if reason:
        if REQUIRE:
            pytest.fail(f"{name} must run here (BAKEOFF_REQUIRE_SERVERS=1): {reason}")
        pytest.skip(reason)
    return found


def group_left(pgid: int) -> list[str]:
    """The live processes of a process group (zombies reaped or not, they are gone)."""
    left = []
    for p in psutil.process_iter(["pid", "name", "status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {p.info['name']}")
    return left


def mentioning(text: str) -> list[str]:
    """Live processes whose command line mentions `text` (a workdir): what a stray child would show."""
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if p.info["status"] != psutil.STATUS_ZOMBIE and text in " ".join(p.info["cmdline"] or []):
                found.append(f"{p.pid} {p.info['name']}")
    return found
