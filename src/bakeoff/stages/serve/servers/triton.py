"""Triton Inference Server: the `tritonserver` 2.51 binary from the nvidia-pytriton wheel (its own env, see
triton_env), run on a model repository bakeoff writes: the python backend (the only one that build has)
running the exported ONNX file with ONNX Runtime, versions 1 and 2 both served, dynamic batching on or
off. Endpoints: KServe v2 over HTTP and gRPC; Prometheus metrics on a third port.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.process_group import free_port, log_tail, start_group, stop_group
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.export.deploy.tensors import TensorSpec, onnx_specs
from bakeoff.stages.export.deploy.triton import _tensors as pbtxt_tensors
from bakeoff.stages.serve.servers import _http, triton_env
from bakeoff.stages.serve.servers.base import HOST, Endpoint, RunningServer, ServeModel, wait_until

MODEL_PY = Path(__file__).with_name("triton_model.py")
# The ONNX artifacts the python backend can run, in order of preference.
ARTIFACT_CHOICES = ("torch-onnx", "keras-onnx")
VERSIONS = ("1", "2")
READY_TIMEOUT_S = 120.0


def pick_artifact(root: Path) -> tuple[str, Path]:
    for name in ARTIFACT_CHOICES:
        path = path_of(root, ARTIFACTS[name])
        if path.is_file():
            return name, path
    raise BakeoffError(
        f"Triton serves an ONNX artifact ({' or '.join(ARTIFACT_CHOICES)}); none was exported under {root}"
    )


def layout_of(artifact: str) -> str:
    """How the served artifact takes images: a PyTorch export channels-first, a Keras one channels-last."""
    return "channels_first" if ARTIFACTS[artifact].origin == "torch" else "channels_last"


def config_pbtxt(
    model: ServeModel,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    site_packages: Path,
    versions: tuple[str, ...] = VERSIONS,
) -> str:
    """The python-backend ModelConfig: every listed version served, batching as asked."""
    batching = (
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {int(model.max_delay_ms * 1000)}\n}}\n"
        if model.batching
        else ""
    )
    params = {
        "onnx_file": "model.onnx",
        "threads": str(model.threads),
        "site_packages": str(site_packages),
        "noop": "1" if _http.options_of(model).get("noop") else "0",
    }
    parameters = "".join(
        f'parameters: {{ key: "{k}" value: {{ string_value: {json.dumps(v)} }} }}\n'
        for k, v in params.items()
    )
    return (
        f'name: "{model.name}"\nbackend: "python"\nmax_batch_size: {model.max_batch_size}\n'
        f"version_policy: {{ specific {{ versions: [ {', '.join(versions)} ] }} }}\n"
        f"input [\n{pbtxt_tensors(inputs)}\n]\noutput [\n{pbtxt_tensors(outputs)}\n]\n"
        f"{batching}instance_group [ {{ count: 1 kind: KIND_CPU }} ]\n{parameters}"
    )


def write_repository(model: ServeModel, install: triton_env.TritonInstall) -> tuple[Path, str]:
    """workdir/repository/<name>/{config.pbtxt, 1/, 2/} and workdir/backends/python; returns the
    repository and the artifact it serves."""
    artifact, onnx_file = pick_artifact(model.artifacts)
    inputs, outputs = onnx_specs(onnx_file)
    repo = model.workdir / "repository"
    shutil.rmtree(repo, ignore_errors=True)
    entry = repo / model.name
    for version in VERSIONS:
        (entry / version).mkdir(parents=True)
        shutil.copy2(onnx_file, entry / version / "model.onnx")
        shutil.copy2(MODEL_PY, entry / version / "model.py")
    (entry / "config.pbtxt").write_text(config_pbtxt(model, inputs, outputs, install.site_packages))
    _link_backend(model.workdir / "backends" / "python", install)
    return repo, artifact


def _link_backend(folder: Path, install: triton_env.TritonInstall) -> None:
    """The python backend with the stub built for the env's Python beside it. Symlinks: the stub finds
    its bundled libraries through an $ORIGIN rpath, which resolves to the link's target."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for source in [*install.python_backend.glob("*.py"), *install.python_backend.glob("*.so"), install.stub]:
        (folder / source.name).symlink_to(source)


def set_versions(running: RunningServer, versions: tuple[str, ...]) -> None:
    """Serve exactly `versions` from now on (a version switch, or both for a canary): rewrites the
    version policy and asks Triton to reload the model (explicit model control)."""
    config = Path(running.extra["repository"]) / running.extra["model"] / "config.pbtxt"
    text = config.read_text()
    start = text.index("version_policy:")
    end = text.index("\n", start)
    policy = f"version_policy: {{ specific {{ versions: [ {', '.join(versions)} ] }} }}"
    config.write_text(text[:start] + policy + text[end:])
    url = f"{running.extra['http']}/v2/repository/models/{running.extra['model']}/load"
    status, body = _http.request("POST", url, b"{}", {"Content-Type": "application/json"}, timeout=60)
    if status != 200:
        raise BakeoffError(f"Triton could not reload {running.extra['model']}: {status} {body[:300]!r}")


class TritonLauncher:
    server = "triton"

    def unavailable(self) -> str | None:
        if triton_env.find() is None:
            return triton_env.missing_message(triton_env.env_dir())
        return None

    def start(self, model: ServeModel) -> RunningServer:
        install = triton_env.find()
        if install is None:
            raise BakeoffError(triton_env.missing_message(triton_env.env_dir()))
        repo, artifact = write_repository(model, install)
        http_port = model.port or free_port()
        grpc_port, metrics_port = free_port(), free_port()
        command = [
            str(install.binary),
            f"--model-repository={repo}",
            f"--backend-directory={model.workdir / 'backends'}",
            "--model-control-mode=explicit",
            f"--load-model={model.name}",
            *(f"--http-address={HOST}", f"--http-port={http_port}"),
            *(f"--grpc-address={HOST}", f"--grpc-port={grpc_port}"),
            *(f"--metrics-address={HOST}", f"--metrics-port={metrics_port}"),
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=5",
        ]
        # The stub embeds the env's Python: it finds that interpreter (and so the env's site-packages)
        # through PATH, and its libpython through LD_LIBRARY_PATH.
        libraries = [str(install.libdir), str(install.libs)]
        env = _http.child_env([str(install.python.parent)], LD_LIBRARY_PATH=":".join(libraries))
        log_path = model.workdir / "tritonserver.log"
        began = time.monotonic()
        proc, log = start_group(command, log_path, env=env, cwd=model.workdir)
        http = f"http://{HOST}:{http_port}"
        ready = f"{http}/v2/models/{model.name}/ready"
        try:
            wait_until(
                lambda: _http.request("GET", ready, timeout=2)[0] == 200,
                proc,
                log_path,
                "tritonserver",
                READY_TIMEOUT_S,
            )
            inputs, _ = onnx_specs(path_of(model.artifacts, ARTIFACTS[artifact]))
            _first_inference(http, model.name, inputs, log_path)
        except BaseException:
            stop_group(proc, 1.0)
            log.close()
            raise
        cold = time.monotonic() - began
        running = RunningServer(
            server=self.server,
            implementation=(
                f"tritonserver {install.version()} (nvidia-pytriton's build), python backend running "
                + (
                    "a no-op model (zeros of the output's shape)"
                    if _http.options_of(model).get("noop")
                    else f"ONNX Runtime {_ort_version()} on {artifact}"
                )
            ),
            endpoints=[
                Endpoint("kserve-v2-http", http, model.name),
                Endpoint("kserve-v2-grpc", f"{HOST}:{grpc_port}", model.name),
            ],
            proc=proc,
            log_path=log_path,
            cold_start_s=cold,
            extra={
                "http": http,
                "metrics_url": f"http://{HOST}:{metrics_port}/metrics",
                "stats_url": f"{http}/v2/models/{model.name}/stats",
                "ready_url": ready,
                "repository": str(repo),
                "model": model.name,
                "versions": list(VERSIONS),
                "artifact": artifact,
                "layout": layout_of(artifact),
                "batching": model.batching,
                "threads": model.threads,
                "max_batch_size": model.max_batch_size,
                "max_delay_ms": model.max_delay_ms if model.batching else None,
            },
            _log=log,
        )
        return running


def _first_inference(http: str, name: str, inputs: list[TensorSpec], log_path: Path) -> None:
    body = _http.kserve_body(_http.sample_batch(inputs))
    url = f"{http}/v2/models/{name}/infer"
    status, answer = _http.request("POST", url, body, {"Content-Type": "application/json"}, timeout=60)
    if status != 200:
        raise BakeoffError(
            f"tritonserver loaded {name} but its first inference failed ({status}: {answer[:300]!r}):\n"
            f"{log_tail(log_path)}"
        )


def _ort_version() -> str:
    return next(r.split("==")[1] for r in triton_env.REQUIREMENTS if r.startswith("onnxruntime"))


launcher = TritonLauncher()
