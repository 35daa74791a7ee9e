"""The virtualenv that holds Triton Inference Server for bakeoff: the `tritonserver` binary (2.51, python
backend only) bundled in the `nvidia-pytriton` wheel, with numpy<2 and ONNX Runtime for the backend's stub.

nvidia-pytriton needs numpy<2, which the main environment cannot take, so the binary lives in a
virtualenv of its own, created on demand (`python -m bakeoff.stages.serve.servers.triton_env`, or
`make serve-env`) and only ever run as a subprocess. Nothing of pytriton's Python API is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bakeoff.errors import BakeoffError, UsageError
from bakeoff.stages.export.converters.onnx2tf_env import _run_logged as run_logged
from bakeoff.stages.export.converters.onnx2tf_env import env_python

# What the env holds. ONNX Runtime runs the model inside Triton's python backend; its numpy must be the
# one pytriton takes (numpy<2).
REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy==1.26.4", "onnxruntime==1.32.0")
MARKER = ".bakeoff-triton"
ENV_VAR = "BAKEOFF_TRITON_ENV"
SETUP_COMMAND = "python -m bakeoff.stages.serve.servers.triton_env"


def env_dir() -> Path:
    """$BAKEOFF_TRITON_ENV, else the user's cache folder."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bakeoff" / "triton-env"


@dataclass(frozen=True)
class TritonInstall:
    """Where the pieces of one Triton install are."""

    env: Path
    python: Path  # the env's interpreter; its bin folder goes first on tritonserver's PATH
    py_version: str  # '3.11': picks the backend stub built for that Python
    libdir: Path  # the base interpreter's LIBDIR, which holds the libpython the stub loads
    site_packages: Path
    root: Path  # .../site-packages/pytriton/tritonserver

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.root / "backends" / "python"

    @property
    def stub(self) -> Path:
        return self.root / "python_backend_stubs" / self.py_version / "triton_python_backend_stub"

    @property
    def libs(self) -> Path:
        return self.site_packages / "nvidia_pytriton.libs"

    def version(self) -> str:
        return self.env.joinpath(MARKER).read_text().split("tritonserver=", 1)[-1].strip() or "2.51"


def missing_message(env: Path) -> str:
    return (
        f"Triton is not installed at {env}: create it with `{SETUP_COMMAND}` (about 90 s, 450 MB; needs "
        f"python3.{sys.version_info.minor} with its shared libpython) or point {ENV_VAR} at one"
    )


def find(env: Path | None = None) -> TritonInstall | None:
    """The install in `env` (default env_dir()), or None when it is missing or incomplete."""
    env = env or env_dir()
    marker = env / MARKER
    if not marker.is_file() or not env_python(env).exists():
        return None
    lines = marker.read_text().splitlines()
    if [x.split("=", 1)[1] for x in lines if x.startswith("requirement=")] != list(REQUIREMENTS):
        return None  # made for other pins: ensure_env rebuilds it
    info = dict(line.split("=", 1) for line in lines if "=" in line)
    try:
        install = TritonInstall(
            env=env,
            python=env_python(env),
            py_version=info["python"],
            libdir=Path(info["libdir"]),
            site_packages=Path(info["site_packages"]),
            root=Path(info["site_packages"]) / "pytriton" / "tritonserver",
        )
    except KeyError:
        return None
    ready = install.binary.is_file() and install.stub.is_file() and install.python_backend.is_dir()
    return install if ready else None


def ensure_env(progress: Callable[[str], None] | None = None) -> TritonInstall:
    """The Triton install, created first when missing."""
    env = env_dir()
    found = find(env)
    if found is not None:
        return found
    if env.exists() and not (env / MARKER).is_file():
        raise UsageError(f"{env} exists but is not bakeoff's Triton env: remove it or set {ENV_VAR}")
    say = progress or (lambda _line: None)
    env.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{env.name}.partial-{os.getpid()}-", dir=env.parent))
    partial.chmod(0o755)
    try:
        say(f"creating a virtualenv for Triton at {env}")
        run_logged([sys.executable, "-m", "venv", "--prompt", "triton", str(partial)], "python -m venv", say)
        log = env.with_name(f"{env.name}-setup.log")
        log.write_text("")
        say(f"installing {' '.join(REQUIREMENTS)} (about 90 s, 450 MB); pip's output: {log}")
        pip = [str(env_python(partial)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        run_logged([*pip, *REQUIREMENTS], "pip install nvidia-pytriton", say, log)
        if env.exists():
            shutil.rmtree(env)
        partial.rename(env)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _write_marker(env)
    found = find(env)
    if found is None:
        raise BakeoffError(f"the Triton env at {env} holds no tritonserver binary or backend stub")
    say(f"Triton ready at {env}")
    return found


_PROBE = (
    "import sys, sysconfig, site; "
    "print(f'{sys.version_info[0]}.{sys.version_info[1]}'); "
    "print(sysconfig.get_config_var('LIBDIR')); "
    "print(site.getsitepackages()[0])"
)


def _write_marker(env: Path) -> None:
    """Records what the stub needs to know about the env's interpreter (asked once, here)."""
    done = subprocess.run([str(env_python(env)), "-c", _PROBE], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BakeoffError(f"the Triton env's python does not run: {done.stderr.strip()[-300:]}")
    version, libdir, site_packages = done.stdout.split()
    lines = [
        *(f"requirement={r}" for r in REQUIREMENTS),
        f"python={version}",
        f"libdir={libdir}",
        f"site_packages={site_packages}",
        "tritonserver=2.51",
    ]
    (env / MARKER).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    print(ensure_env(progress=print).env)
