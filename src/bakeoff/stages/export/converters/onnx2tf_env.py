"""ONNX -> TensorFlow SavedModel with onnx2tf, run from a virtualenv of its own created on demand.

onnx2tf pins old numpy, protobuf, TensorFlow and onnxruntime; installed beside bakeoff it would break
the main environment, so it lives in a separate virtualenv and is only ever run as a subprocess.

Layout: onnx2tf turns NCHW inputs into NHWC by default, and treats every 4-D input as NCHW, so a
Keras-made NHWC input would come out as (N, H, C, W). We pass every graph input to
`--keep_shape_absolutely_input_names`, so the SavedModel takes exactly the ONNX model's input shapes
(torch-made: NCHW, Keras-made: NHWC) and is a drop-in for the model it came from. Its `serving_default`
signature takes the ONNX input names as keywords and answers `output_0`, `output_1`, ...
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from bakeoff.errors import BakeoffError, UsageError

ONNX2TF_VERSION = "1.29.24"
REQUIREMENT = f"onnx2tf=={ONNX2TF_VERSION}"
MARKER = ".bakeoff-onnx2tf"
SETUP_COMMAND = "bakeoff convert --setup"
ENV_VAR = "BAKEOFF_CONVERTER_ENV"

# Runs inside the onnx2tf environment: reads the graph's input names there (that environment surely has
# onnx) and hands them to onnx2tf, so that no input is transposed. -osd writes a serving signature;
# -n keeps only onnx2tf's error lines, the ones a failure message is made from.
_DRIVER = """
import sys
import onnx
source, target = sys.argv[1], sys.argv[2]
try:
    graph = onnx.load(source, load_external_data=False).graph
except Exception as exc:
    sys.exit(f"ERROR: not a readable ONNX model: {exc}")
weights = {t.name for t in graph.initializer}
names = [i.name for i in graph.input if i.name not in weights]
sys.argv = ["onnx2tf", "-i", source, "-o", target, "-osd", "-n"] + (["-kat", *names] if names else [])
from onnx2tf import main
sys.exit(main())
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NATIVE_LOG = re.compile(r"^[WIEF]\d{4} |^WARNING: All log messages before absl")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b")


def env_dir() -> Path:
    """Where the onnx2tf environment lives: $BAKEOFF_CONVERTER_ENV, else the user's cache folder."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bakeoff" / "onnx2tf-env"


def env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def is_ready(env: Path) -> bool:
    """True when `env` holds the pinned onnx2tf: made by ensure_env, or by hand with the pip command."""
    if not env_python(env).exists():
        return False
    marker = env / MARKER
    if marker.is_file():
        return marker.read_text().strip() == REQUIREMENT
    # pip installs a package after everything it depends on, so onnx2tf's own metadata comes last.
    return any(env.glob(f"lib/python*/site-packages/onnx2tf-{ONNX2TF_VERSION}.dist-info"))


def missing_env_message(env: Path) -> str:
    return (
        f"the onnx2tf environment is missing at {env}: create it with `{SETUP_COMMAND}` "
        f"(about 90 s and 2.6 GB) or `python -m venv {env} && {env_python(env)} -m pip install {REQUIREMENT}`"
    )


# How often a long install says how far it has got.
PROGRESS_S = 10.0


def ensure_env(progress: Callable[[str], None] | None = None, install: bool = True) -> Path:
    """The onnx2tf environment's folder, created first when missing and `install` is true."""
    env = env_dir()
    if is_ready(env):
        return env
    if not install:
        raise UsageError(missing_env_message(env))
    if env.exists() and not (env / MARKER).is_file():
        raise UsageError(
            f"{env} exists but holds no {REQUIREMENT}: remove it or point {ENV_VAR} at another folder"
        )
    say = progress or (lambda _line: None)
    env.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(env)
    _move_into_place(_build(env, say), env)
    say(f"onnx2tf environment ready at {env}")
    return env


def _partial_prefix(env: Path) -> str:
    return f".{env.name}.partial-"


def _remove_abandoned(env: Path) -> None:
    """Deletes half-built environments whose installing process is gone (killed installs leave them)."""
    for path in env.parent.glob(_partial_prefix(env) + "*"):
        pid = path.name.removeprefix(_partial_prefix(env)).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    return True


def _build(env: Path, say: Callable[[str], None]) -> Path:
    """Builds the environment under a temporary name beside `env`, so no half-built one looks ready."""
    partial = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(env)}{os.getpid()}-", dir=env.parent))
    partial.chmod(0o755)  # mkdtemp's 0700 would hide a shared environment from other users
    try:
        say(f"creating a virtualenv for onnx2tf at {env}")
        # venv run from inside a virtualenv builds on the base interpreter, so the Python version matches.
        venv = [sys.executable, "-m", "venv", "--prompt", "onnx2tf", str(partial)]
        _run_logged(venv, "python -m venv", say)
        log = env.with_name(f"{env.name}-setup.log")
        log.write_text("")
        say(f"installing {REQUIREMENT} and its pinned TensorFlow (about 90 s, 2.6 GB); pip's output: {log}")
        pip = [str(env_python(partial)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        _run_logged([*pip, REQUIREMENT], f"pip install {REQUIREMENT}", say, log)
        _relocate_scripts(partial, env)
        (partial / MARKER).write_text(REQUIREMENT + "\n")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return partial


def _relocate_scripts(partial: Path, env: Path) -> None:
    """Points the console scripts' #! lines at `env`, where the environment is about to be renamed.

    onnx2tf runs `onnxsim` as a command found on PATH; with a #! line still naming the temporary folder,
    that command would fail and onnx2tf would quietly skip its graph simplification.
    """
    old, new = str(partial).encode(), str(env).encode()
    for script in [*env_python(partial).parent.iterdir(), partial / "pyvenv.cfg"]:
        if script.is_file() and not script.is_symlink():
            content = script.read_bytes()
            if old in content[:4096]:
                script.write_bytes(content.replace(old, new))


def _run_logged(command: list[str], what: str, say: Callable[[str], None], log: Path | None = None) -> None:
    """Runs `command` with its whole output in `log` (when given) and a line of progress to `say` at most
    every PROGRESS_S: pip's hundreds of lines belong in a file. A failure raises with its last error line."""
    tail: deque[str] = deque(maxlen=200)
    collected, last_said = 0, time.monotonic()
    with (
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_clean_env()
        ) as process,
        log.open("a", encoding="utf-8") if log else contextlib.nullcontext() as out,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            if out is not None:
                out.write(line)
            if not line.strip():
                continue
            tail.append(line.rstrip())
            collected += line.startswith("Collecting ")
            if log is None or time.monotonic() - last_said >= PROGRESS_S:
                last_said = time.monotonic()
                say(f"{what}: {collected} package(s) collected so far" if log else line.strip())
    if process.returncode != 0:
        where = f" (full log: {log})" if log else ""
        raise BakeoffError(f"{what} failed: {last_error_line(tail)}{where}")


def _move_into_place(partial: Path, env: Path) -> None:
    """Renames the finished environment to `env`, first moving aside a stale one made by ensure_env."""
    stale = None
    if env.exists():
        stale = env.with_name(f"{_partial_prefix(env)}{os.getpid()}-stale")
        env.rename(stale)
    try:
        partial.rename(env)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not is_ready(env):  # not a concurrent install that finished first
            raise
    finally:
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)


def _clean_env(env: Path | None = None) -> dict[str, str]:
    """The caller's environment without what would make the other interpreter load bakeoff's packages;
    with `env`, its scripts come first on PATH, since onnx2tf runs `onnxsim` by name."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    variables = {k: v for k, v in os.environ.items() if k not in drop}
    variables["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if env is not None:
        path = [str(env_python(env).parent), variables.get("PATH", "")]
        variables["PATH"] = os.pathsep.join(p for p in path if p)
    return variables


def last_error_line(output: Iterable[str] | str) -> str:
    """The line of a tool's output that best says why it failed: its last ERROR, else its last exception."""
    lines = _meaningful(output)
    errors = [_unprefixed(line) for line in lines if line.startswith("ERROR:")]
    return _clip(errors[-1] if errors else _exception(lines) or _last(lines))


def onnx2tf_failure(output: str) -> str:
    """Why onnx2tf failed, in one line: what it said before any traceback, else the exception, and where."""
    lines = _meaningful(output)
    before_trace = lines[: next((i for i, x in enumerate(lines) if x.startswith("Traceback")), len(lines))]
    # After a traceback onnx2tf prints the same generic hints for every failure; they explain nothing.
    stated = [_unprefixed(x) for x in before_trace if x.startswith("ERROR:") and "trace log is" not in x]
    reason = stated[-1] if stated else _exception(lines) or _last(lines)
    node = next((x.split("onnx_op_name:", 1)[1].strip() for x in lines if "onnx_op_name:" in x), None)
    return _clip(f"{reason} (at ONNX node {node})" if node else reason)


def _meaningful(output: Iterable[str] | str) -> list[str]:
    text = output if isinstance(output, str) else "\n".join(output)
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    return [line for line in lines if line and not _NATIVE_LOG.match(line)]


def _exception(lines: list[str]) -> str | None:
    """The last exception line; Keras puts the actual reason for a layer's failure on the line after."""
    found = [i for i, line in enumerate(lines) if _EXCEPTION.match(line)]
    if not found:
        return None
    line = lines[found[-1]]
    if "Exception encountered when calling layer" in line and found[-1] + 1 < len(lines):
        return f"{line.rstrip('.')}: {lines[found[-1] + 1]}"
    return line


def _last(lines: list[str]) -> str:
    return lines[-1] if lines else "no output"


def _unprefixed(line: str) -> str:
    return line.removeprefix("ERROR:").strip()


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def onnx_to_savedmodel(onnx_path: Path, out_dir: Path, timeout: float = 600) -> Path:
    """Converts an ONNX file to a TensorFlow SavedModel in `out_dir` (replacing a SavedModel there)."""
    onnx_path, out_dir = Path(onnx_path).resolve(), Path(out_dir).resolve()
    if not onnx_path.is_file():
        raise UsageError(f"ONNX file not found: {onnx_path}")
    _check_replaceable(out_dir)
    env = ensure_env(install=False)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent) as work:
        staged = Path(work) / "saved_model"
        output = _run_onnx2tf(env, onnx_path, staged, timeout, Path(work))
        # onnx2tf logs a failed SavedModel export and goes on; it also fails after the SavedModel is
        # complete when only its TFLite export breaks. saved_model.pb is written last and atomically.
        if not (staged / "saved_model.pb").is_file():
            raise BakeoffError(f"onnx2tf could not convert {onnx_path.name}: {onnx2tf_failure(output)}")
        for tflite in staged.glob("*.tflite"):
            tflite.unlink()  # onnx2tf always writes these; bakeoff makes its own TFLite files
        _replace(staged, out_dir, Path(work))
    return out_dir


def _check_replaceable(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "saved_model.pb").is_file():
        raise UsageError(f"{out_dir} exists and is not a SavedModel: refusing to overwrite it")


def _run_onnx2tf(env: Path, onnx_path: Path, staged: Path, timeout: float, work: Path) -> str:
    command = [str(env_python(env)), "-c", _DRIVER, str(onnx_path), str(staged)]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream keeps onnx2tf's ERROR lines in order with tracebacks
        text=True,
        cwd=work,
        env=_clean_env(env),
        start_new_session=True,  # a process group of its own, so that a kill also reaches onnxsim
    ) as process:
        try:
            return process.communicate(timeout=timeout)[0]
        except BaseException as exc:
            _kill_group(process)
            if isinstance(exc, subprocess.TimeoutExpired):
                what = f"onnx2tf did not finish converting {onnx_path.name}"
                raise BakeoffError(f"{what} within {timeout:g} s") from exc
            raise


def _kill_group(process: subprocess.Popen[str]) -> None:
    if os.name == "posix":
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()
    process.communicate()


def _replace(staged: Path, out_dir: Path, work: Path) -> None:
    if out_dir.exists():
        out_dir.rename(work / "previous")  # deleted with the work folder
    staged.rename(out_dir)


if __name__ == "__main__":
    print(ensure_env(progress=print))
