"""TorchServe (pip `torchserve` 0.12 and a Java runtime) serving the .mar that `bakeoff export --target
torchserve` writes: bakeoff's JSON handler on the TorchScript artifact, server-side batching on or off,
token authorization kept on (the inference key from key_file.json travels with every request).

The `torchserve` wrapper starts java, which starts one Python worker per model; the whole tree is one
process group, killed as one (SIGINT to the wrapper alone leaves java behind).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.process_group import free_port, log_tail, start_group, stop_group
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.export.deploy import torchserve as mar_writer
from bakeoff.stages.export.deploy.tensors import onnx_specs
from bakeoff.stages.serve.servers import _http
from bakeoff.stages.serve.servers.base import HOST, Endpoint, RunningServer, ServeModel, wait_until

ARTIFACT = "torch-torchscript"
READY_TIMEOUT_S = 120.0
KEY_FILE = "key_file.json"
TOKEN_EXPIRATION_MIN = 24 * 60


def torchserve_command() -> Path | None:
    """The `torchserve` console script of this interpreter's environment (its workers run this Python)."""
    script = Path(sys.executable).parent / "torchserve"
    if script.is_file():
        return script
    found = shutil.which("torchserve")
    return Path(found) if found else None


def java() -> str | None:
    return shutil.which("java")


def write_mar(model: ServeModel, store: Path, version: str, file_name: str) -> Path:
    """<store>/<file_name>.mar for `model` at `version`, made by the export stage's .mar writer."""
    torchscript = path_of(model.artifacts, ARTIFACTS[ARTIFACT])
    if not torchscript.is_file():
        raise BakeoffError(
            f"TorchServe serves the {ARTIFACT} artifact; it was not exported under {model.artifacts}"
        )
    shape = _sample_shape(model)
    dtype = model.inputs[0].dtype if model.inputs else "float32"
    with tempfile.TemporaryDirectory(dir=store.parent) as tmp:
        made = mar_writer.write(
            Path(tmp), model.name, model=torchscript, version=version, input_shape=shape, dtype=dtype
        )
        target = store / f"{file_name}.mar"
        target.unlink(missing_ok=True)
        shutil.move(made, target)
    return target


NOOP_HANDLER = Path(__file__).with_name("torchserve_noop_handler.py")


def write_noop_mar(model: ServeModel, store: Path) -> Path:
    """<store>/<name>.mar whose handler answers zeros of the output's shape (the stack's own ceiling)."""
    shape = [int(d) if d > 0 else 1 for d in model.outputs[0].shape] if model.outputs else [1]
    with tempfile.TemporaryDirectory(dir=store.parent) as tmp:
        extra = Path(tmp) / "bakeoff_noop.json"
        extra.write_text(json.dumps({"output_shape": shape}))
        command = [
            *mar_writer._archiver(),
            *("--model-name", model.name, "--version", "1.0", "--handler", str(NOOP_HANDLER)),
            *("--extra-files", str(extra), "--export-path", str(store)),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BakeoffError(f"torch-model-archiver failed on the no-op handler: {done.stderr.strip()[-300:]}")
    return store / f"{model.name}.mar"


def _sample_shape(model: ServeModel) -> tuple[int, ...] | None:
    """One sample's shape in torch's layout (from the torch ONNX export when there is one): lets the handler
    tell one sample from a batch; without it every request is read as a batch."""
    onnx_file = path_of(model.artifacts, ARTIFACTS["torch-onnx"])
    if onnx_file.is_file():
        inputs, _ = onnx_specs(onnx_file)
        return tuple(inputs[0].shape)
    return None


def config_properties(inference: int, management: int, metrics: int, store: Path) -> str:
    return "\n".join(
        [
            f"inference_address=http://{HOST}:{inference}",
            f"management_address=http://{HOST}:{management}",
            f"metrics_address=http://{HOST}:{metrics}",
            f"model_store={store}",
            "metrics_mode=prometheus",
            "default_workers_per_model=1",
            "install_py_dep_per_model=false",
            "enable_model_api=true",
            "disable_system_metrics=true",
            # Keys expire after 60 minutes by default; `bakeoff serve` may stay up longer than that.
            f"token_expiration_min={TOKEN_EXPIRATION_MIN}",
            "",
        ]
    )


def read_keys(workdir: Path) -> dict[str, str]:
    """The keys TorchServe wrote at start ('management', 'inference', 'API')."""
    data = json.loads((workdir / KEY_FILE).read_text())
    return {kind: entry["key"] for kind, entry in data.items() if isinstance(entry, dict) and "key" in entry}


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def register(
    management: str, mar: str, model: ServeModel, key: str | None, timeout: float = READY_TIMEOUT_S
) -> None:
    """Registers a .mar with one worker and waits for it (synchronous=true)."""
    batch = model.max_batch_size if model.batching else 1
    delay = max(1, round(model.max_delay_ms)) if model.batching else 1
    query = f"url={mar}&initial_workers=1&synchronous=true&batch_size={batch}&max_batch_delay={delay}"
    status, body = _http.request("POST", f"{management}/models?{query}", headers=bearer(key), timeout=timeout)
    if status != 200:
        raise BakeoffError(f"TorchServe refused to register {mar}: {status} {body[:300]!r}")


def worker_ready(management: str, name: str, key: str | None, version: str | None = None) -> bool:
    url = f"{management}/models/{name}" + (f"/{version}" if version else "")
    answer = _http.get_json(url, headers=bearer(key), timeout=2)
    return any(w.get("status") == "READY" for entry in answer for w in entry.get("workers", []))


def register_version(running: RunningServer, model: ServeModel, version: str = "2.0") -> None:
    """The versions API demo: another .mar of the same model at `version`, registered beside the first."""
    store = Path(running.extra["model_store"])
    mar = write_mar(model, store, version, f"{model.name}_v{version.replace('.', '_')}")
    register(running.extra["management_url"], mar.name, model, running.extra.get("management_key"))


def set_default(running: RunningServer, version: str) -> None:
    url = f"{running.extra['management_url']}/models/{running.extra['model']}/{version}/set-default"
    status, body = _http.request("PUT", url, headers=bearer(running.extra.get("management_key")))
    if status != 200:
        raise BakeoffError(f"TorchServe could not make {version} the default: {status} {body[:300]!r}")


class TorchServeLauncher:
    server = "torchserve"

    def __init__(self, token_auth: bool = True) -> None:
        self.token_auth = token_auth

    def unavailable(self) -> str | None:
        if torchserve_command() is None:
            return "TorchServe is not installed: `pip install torchserve==0.12.0` (or bakeoff[servers])"
        if java() is None:
            return "TorchServe needs Java: `apt-get install openjdk-17-jre-headless` (or set JAVA_HOME)"
        return None

    def start(self, model: ServeModel) -> RunningServer:
        reason = self.unavailable()
        if reason:
            raise BakeoffError(reason)
        script = torchserve_command()
        assert script is not None
        store = model.workdir / "model-store"
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)
        (model.workdir / "tmp").mkdir(exist_ok=True)
        (model.workdir / KEY_FILE).unlink(missing_ok=True)
        noop = bool(_http.options_of(model).get("noop"))
        mar = write_noop_mar(model, store) if noop else write_mar(model, store, "1.0", model.name)
        ports = (model.port or free_port(), free_port(), free_port())
        config = model.workdir / "config.properties"
        config.write_text(config_properties(*ports, store))
        command = [str(script), "--start", "--foreground", "--ncs", "--ts-config", str(config)]
        command += ["--model-store", str(store)]
        if not self.token_auth:
            command.append("--disable-token-auth")
        # TMPDIR: the wrapper keeps a pid file there and refuses to start a second TorchServe beside it.
        # OMP_NUM_THREADS: the worker's torch takes its intra-op threads from it (bakeoff's --threads).
        env = _http.child_env(
            [str(Path(sys.executable).parent)],
            TMPDIR=str(model.workdir / "tmp"),
            LOG_LOCATION=str(model.workdir / "logs"),
            OMP_NUM_THREADS=str(model.threads),
        )
        log_path = model.workdir / "torchserve.log"
        inference, management, metrics = (f"http://{HOST}:{p}" for p in ports)
        began = time.monotonic()
        proc, log = start_group(command, log_path, env=env, cwd=model.workdir)
        try:
            keys = self._wait_for_frontend(proc, log_path, model.workdir, management)
            register(management, mar.name, model, keys.get("management"))
            wait_until(
                lambda: worker_ready(management, model.name, keys.get("management")),
                proc,
                log_path,
                "torchserve",
                READY_TIMEOUT_S,
            )
            _first_inference(inference, model, keys.get("inference"), log_path)
        except BaseException as exc:
            stop_group(proc, 1.0)
            log.close()
            tail = log_tail(log_path)
            if isinstance(exc, BakeoffError) and tail and tail not in str(exc):
                raise BakeoffError(f"{exc}\n{tail}") from exc  # a refused registration: the log says why
            raise
        cold = time.monotonic() - began
        headers = tuple(bearer(keys.get("inference")).items())
        return RunningServer(
            server=self.server,
            implementation=(
                f"TorchServe {_version()} (java frontend, Python worker) running "
                + ("a no-op handler (zeros)" if noop else f"bakeoff's handler on {ARTIFACT}")
            ),
            endpoints=[Endpoint("torchserve-rest", inference, model.name, headers=headers)],
            proc=proc,
            log_path=log_path,
            cold_start_s=cold,
            extra={
                "inference_url": inference,
                "management_url": management,
                "metrics_url": f"{metrics}/metrics",
                "model": model.name,
                "model_store": str(store),
                "token_auth": self.token_auth,
                "management_key": keys.get("management"),
                "inference_key": keys.get("inference"),
                "key_file": str(model.workdir / KEY_FILE) if self.token_auth else None,
                "token_expiration_min": TOKEN_EXPIRATION_MIN if self.token_auth else None,
                "artifact": ARTIFACT,
                "layout": "channels_first",
                "batching": model.batching,
                "threads": model.threads,
                "batch_size": model.max_batch_size if model.batching else 1,
                "max_batch_delay_ms": max(1, round(model.max_delay_ms)) if model.batching else None,
                "versions": ["1.0"],
            },
            _log=log,
        )

    def _wait_for_frontend(self, proc: Any, log_path: Path, workdir: Path, management: str) -> dict[str, str]:
        """Waits until the management API answers (with the key, when token auth is on); returns the keys."""
        keys: dict[str, str] = {}

        def up() -> bool:
            if self.token_auth:
                keys.update(read_keys(workdir))
            status, _ = _http.request(
                "GET", f"{management}/models", headers=bearer(keys.get("management")), timeout=2
            )
            return status == 200

        wait_until(up, proc, log_path, "torchserve", READY_TIMEOUT_S)
        return keys


def _first_inference(inference: str, model: ServeModel, key: str | None, log_path: Path) -> None:
    shape = _sample_shape(model) or tuple(model.inputs[0].shape)
    dtype = model.inputs[0].dtype if model.inputs else "float32"
    sample = np.zeros((1, *[d if d > 0 else 1 for d in shape]), dtype=dtype)
    body = json.dumps(sample.tolist()).encode()
    headers = {"Content-Type": "application/json", **bearer(key)}
    status, answer = _http.request("POST", f"{inference}/predictions/{model.name}", body, headers, timeout=60)
    if status != 200:
        raise BakeoffError(
            f"TorchServe loaded {model.name} but its first inference failed ({status}: {answer[:300]!r}):\n"
            f"{log_tail(log_path)}"
        )


def _version() -> str:
    from importlib.metadata import version

    try:
        return version("torchserve")
    except Exception:
        return "(unknown version)"


launcher = TorchServeLauncher()
