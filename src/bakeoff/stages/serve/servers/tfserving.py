"""The TF Serving launcher: the real `tensorflow_model_server` when it is on PATH (or `--tfserving-bin`
names it), otherwise bakeoff's own implementation of TF Serving's REST and gRPC APIs (tfserving_app), both
on the export stage's `keras-savedmodel` laid out as a TF Serving model base path."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bakeoff.errors import BakeoffError
from bakeoff.process_group import free_port, start_group
from bakeoff.stages.serve import OWN_TFSERVING
from bakeoff.stages.serve.servers.base import HOST, Endpoint, RunningServer, ServeModel, wait_until

REAL = "tensorflow_model_server"
SAVEDMODEL = "keras-savedmodel"


def binary(model: ServeModel | None = None) -> str | None:
    """The real server, when this machine has it."""
    given = (model.options.get("tfserving_bin") if model is not None else None) or os.environ.get(
        "BAKEOFF_TFSERVING_BIN"
    )
    if given:
        return str(given)
    return shutil.which("tensorflow_model_server")


class TfServingLauncher:
    server = "tf-serving"

    def unavailable(self) -> str | None:
        if binary() is not None:
            return None
        for module in ("tensorflow", "aiohttp", "prometheus_client", "tensorflow_serving"):
            if importlib.util.find_spec(module) is None:
                return (
                    f"bakeoff's TF Serving API server needs '{module}': pip install 'bakeoff[serve]' "
                    "(tensorflow-serving-api with --no-deps), or put tensorflow_model_server on PATH"
                )
        return None

    def start(self, model: ServeModel) -> RunningServer:
        base = lay_out(model)
        rest = model.port or free_port()
        # options['grpc'] False: REST only (a no-op stack then starts without importing TensorFlow).
        grpc_port = (
            int(model.options.get("grpc_port") or free_port()) if model.options.get("grpc", True) else 0
        )
        log_path = model.workdir / "tfserving.log"
        real = binary(model)
        labels: dict[str, int] = dict(model.options.get("labels", {}))
        if real:
            grpc_port = grpc_port or free_port()  # tensorflow_model_server always serves gRPC
            cmd = self._real_command(real, model, base, rest, grpc_port, labels)
            implementation = REAL
        else:
            cmd = self._own_command(model, base, rest, grpc_port, labels)
            implementation = OWN_TFSERVING
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": _pythonpath()}
        started = time.monotonic()
        proc, log = start_group(cmd, log_path, env=env)
        address = f"http://{HOST}:{rest}"
        version = str(max(_versions(base)))
        probe = _probe(model, address)
        wait_until(probe, proc, log_path, f"{implementation} on {model.name}", timeout=120)
        cold = time.monotonic() - started
        endpoints = [Endpoint("tfserving-rest", address, model.name)]
        if grpc_port:
            endpoints.append(Endpoint("tfserving-grpc", f"{HOST}:{grpc_port}", model.name))
        extra: dict[str, Any] = {
            "metrics_url": f"{address}/metrics" if not real else f"{address}/monitoring/prometheus/metrics",
            "versions": _versions(base),
            "latest_version": version,
            "labels": labels,
            "base_path": str(base),
            "command": cmd,
        }
        running = RunningServer(self.server, implementation, endpoints, proc, log_path, cold, extra)
        running._log = log
        return running

    def _own_command(
        self, model: ServeModel, base: Path, rest: int, grpc_port: int, labels: dict[str, int]
    ) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "bakeoff.stages.serve.servers.tfserving_app",
            "--model-name",
            model.name,
            "--base-path",
            str(base),
            "--rest-port",
            str(rest),
            "--grpc-port",
            str(grpc_port),
            "--max-batch",
            str(model.max_batch_size),
            "--max-delay-ms",
            str(model.max_delay_ms),
            "--threads",
            str(model.threads),
            "--max-queue",
            str(model.options.get("max_queue", 1024)),
            "--max-body",
            str(model.options.get("max_body", 16 << 20)),
            "--overload-status",
            str(model.options.get("overload_status", 429)),
        ]
        if model.batching:
            cmd.append("--batching")
        for name, version in labels.items():
            cmd += ["--label", f"{name}={version}"]
        if model.options.get("noop"):
            spec = model.inputs[0]
            out = model.outputs[0]
            cmd += ["--noop", "--noop-name", spec.name, "--noop-dtype", spec.dtype]
            cmd += ["--noop-input", *map(str, spec.shape)]
            cmd += ["--noop-output", *map(str, out.shape)]
        return cmd

    def _real_command(
        self, real: str, model: ServeModel, base: Path, rest: int, grpc_port: int, labels: dict[str, int]
    ) -> list[str]:
        config = model.workdir / "models.config"
        versions = _versions(base)
        label_text = "".join(f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in labels.items())
        config.write_text(
            "model_config_list {\n  config {\n"
            f'    name: "{model.name}"\n    base_path: "{base}"\n    model_platform: "tensorflow"\n'
            "    model_version_policy { specific { "
            + " ".join(f"versions: {v}" for v in versions)
            + " } }\n"
            + label_text
            + "  }\n}\n"
        )
        cmd = [
            real,
            f"--port={grpc_port}",
            f"--rest_api_port={rest}",
            f"--model_config_file={config}",
            f"--tensorflow_intra_op_parallelism={model.threads}",
            f"--tensorflow_inter_op_parallelism={model.threads}",
            "--allow_version_labels_for_unavailable_models=true",
        ]
        if model.batching:
            params = model.workdir / "batching.config"
            params.write_text(
                f"max_batch_size {{ value: {model.max_batch_size} }}\n"
                f"batch_timeout_micros {{ value: {int(model.max_delay_ms * 1000)} }}\n"
                "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 1000 }\n"
            )
            cmd += ["--enable_batching=true", f"--batching_parameters_file={params}"]
        return cmd


def lay_out(model: ServeModel) -> Path:
    """<workdir>/models/<name>/<version>/ for each version (the SavedModel linked, not copied)."""
    from bakeoff.stages.export.artifacts import ARTIFACTS, path_of

    savedmodel = path_of(model.artifacts, ARTIFACTS[SAVEDMODEL])
    if not model.options.get("noop") and not (savedmodel / "saved_model.pb").is_file():
        raise BakeoffError(
            f"the {SAVEDMODEL} artifact was not made ({savedmodel}): run the export stage first"
        )
    base = model.workdir / "models" / model.name
    base.mkdir(parents=True, exist_ok=True)
    versions = model.options.get("versions") or [1]
    for v in versions:
        dest = base / str(v)
        if dest.exists() or dest.is_symlink():
            continue
        if model.options.get("noop"):
            dest.mkdir()
            (dest / "saved_model.pb").write_bytes(b"")
        else:
            dest.symlink_to(savedmodel.resolve(), target_is_directory=True)
    return base


def _versions(base: Path) -> list[int]:
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())


def _probe(model: ServeModel, address: str) -> Any:
    """Ready when the model itself answers a predict, so cold start ends at the first good inference."""
    import numpy as np

    spec = model.inputs[0]
    rows = np.zeros((1, *[max(d, 1) for d in spec.shape]), dtype=spec.dtype).tolist()
    body = json.dumps({"instances": rows}).encode()
    if len(model.inputs) > 1:
        body = json.dumps(
            {
                "inputs": {
                    s.name: np.zeros((1, *[max(d, 1) for d in s.shape]), s.dtype).tolist()
                    for s in model.inputs
                }
            }
        ).encode()

    def ready() -> bool:
        request = urllib.request.Request(
            f"{address}/v1/models/{model.name}:predict",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            return bool(r.status == 200)

    return ready


def _pythonpath() -> str:
    """The server process imports bakeoff from wherever this process did."""
    import bakeoff

    src = str(Path(bakeoff.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return src + (os.pathsep + rest if rest else "")


launcher = TfServingLauncher()
