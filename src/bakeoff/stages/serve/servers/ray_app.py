"""The process that puts a bakeoff model behind Ray Serve: `python -m bakeoff.stages.serve.servers.ray_app
CONFIG.json`. It starts (or joins, with an address) a Ray cluster, deploys one replica that runs the
exported ONNX file with ONNX Runtime under `@serve.batch`, and keeps it up until SIGTERM.

The deployment speaks KServe v2 (`POST /v2/models/{name}/infer` in JSON or with the binary-tensor
extension, `GET /v2/models/{name}/ready`), the protocol Triton speaks, so both share a protocol row; and a
plain JSON route (`POST /{name}`: a nested list in, `{"predictions": ...}` out) for clients that want
nothing else.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

# KServe v2 datatype <-> numpy dtype name
_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
_KSERVE = {v: k for k, v in _NUMPY.items()}
MAX_BODY_BYTES = 16 * 2**20  # bakeoff's TF Serving API server's default too


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OnnxModel:
    """ONNX Runtime on one ONNX file, with the input checks a server makes before running it."""

    def __init__(self, onnx: bytes | str, threads: int, noop: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.sample_shape = [d if isinstance(d, int) else -1 for d in first.shape[1:]]
        self.dtype = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(int32)": "int32"}.get(
            first.type, "float32"
        )
        self.output_name = self.session.get_outputs()[0].name
        self.output_shape = [d if isinstance(d, int) else 1 for d in self.session.get_outputs()[0].shape[1:]]
        self.noop = noop

    def check(self, array: np.ndarray) -> np.ndarray:
        want = self.sample_shape
        got = list(array.shape[1:])
        if array.ndim != len(want) + 1 or any(w not in (-1, g) for w, g in zip(want, got, strict=True)):
            raise BadRequest(400, f"input shape {list(array.shape)} does not match {[-1, *want]}")
        return array

    def run(self, array: np.ndarray) -> np.ndarray:
        if self.noop:
            return np.zeros((len(array), *self.output_shape), np.float32)
        return np.asarray(self.session.run([self.output_name], {self.input_name: array})[0])


def kserve_input(body: bytes, model: OnnxModel, header_length: int | None = None) -> tuple[np.ndarray, bool]:
    """The first input of a KServe v2 request, JSON or with the binary-tensor extension (a JSON header of
    `header_length` bytes, then the raw tensor); and whether the client asked for a binary answer."""
    head, raw = (body, None) if header_length is None else (body[:header_length], body[header_length:])
    try:
        request = json.loads(head)
        entry = request["inputs"][0]
        datatype = entry["datatype"]
        shape = [int(d) for d in entry["shape"]]
        size: Any = (entry.get("parameters") or {}).get("binary_data_size")
        data = entry["data"] if size is None else None
        binary_out = bool((request.get("parameters") or {}).get("binary_data_output"))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BadRequest(400, f"not a KServe v2 inference request: {type(exc).__name__}: {exc}") from exc
    if datatype not in _NUMPY:
        raise BadRequest(400, f"datatype {datatype!r} is not a KServe v2 datatype")
    if _NUMPY[datatype] != model.dtype:
        raise BadRequest(400, f"input datatype {datatype} does not match the model's {_KSERVE[model.dtype]}")
    try:
        if data is None:
            if raw is None or len(raw) < int(size):
                raise ValueError(f"binary_data_size {size} but {0 if raw is None else len(raw)} bytes follow")
            array = np.frombuffer(raw[: int(size)], dtype=_NUMPY[datatype]).reshape(shape)
        else:
            array = np.asarray(data, dtype=_NUMPY[datatype]).reshape(shape)
    except (ValueError, TypeError) as exc:
        raise BadRequest(400, f"data does not fit shape {shape}: {exc}") from exc
    return model.check(array), binary_out


def plain_input(body: bytes, model: OnnxModel) -> np.ndarray:
    try:
        request = json.loads(body)
        if isinstance(request, dict):
            request = request["instances"]
        array = np.asarray(request, dtype=model.dtype)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(400, f"not a JSON list of samples: {type(exc).__name__}: {exc}") from exc
    return model.check(array)


def kserve_output(
    name: str, version: str, output_name: str, out: np.ndarray, binary: bool = False
) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: JSON, or a JSON header followed by the raw output (binary)."""
    entry: dict[str, Any] = {
        "name": output_name,
        "datatype": _KSERVE.get(out.dtype.name, "FP32"),
        "shape": list(out.shape),
    }
    raw = np.ascontiguousarray(out).tobytes() if binary else b""
    if binary:
        entry["parameters"] = {"binary_data_size": len(raw)}
    else:
        entry["data"] = out.ravel().tolist()
    head = json.dumps({"model_name": name, "model_version": version, "outputs": [entry]}).encode()
    if not binary:
        return head, {"content-type": "application/json"}
    return head + raw, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }


def build_app(config: dict[str, Any]) -> Any:
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    name = config["name"]
    batching = bool(config["batching"])

    @serve.deployment(name=name, num_replicas=1, max_ongoing_requests=config.get("max_ongoing", 256))
    class Model:
        def __init__(self, onnx: bytes) -> None:
            self.model = OnnxModel(onnx, int(config["threads"]), bool(config.get("noop")))

        @serve.batch(
            max_batch_size=int(config["max_batch_size"]),
            batch_wait_timeout_s=float(config["max_delay_ms"]) / 1000.0,
        )
        async def batched(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
            sizes = np.cumsum([0, *(len(a) for a in arrays)])
            out = self.model.run(np.concatenate(arrays))
            return [out[sizes[i] : sizes[i + 1]] for i in range(len(arrays))]

        async def infer(self, array: np.ndarray) -> np.ndarray:
            if batching:
                return await self.batched(array)
            return self.model.run(array)

        async def __call__(self, request: Request) -> Response:
            path = request.url.path.rstrip("/")
            try:
                return await self.route(request, path)
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)

        async def route(self, request: Request, path: str) -> Response:
            prefix = f"/v2/models/{name}"
            if request.method == "GET" and path in (f"{prefix}/ready", "/v2/health/ready"):
                return JSONResponse({"name": name, "ready": True})
            if request.method == "GET" and path == prefix:
                return JSONResponse({"name": name, "versions": ["1"], "platform": "ray-serve onnxruntime"})
            if request.method != "POST":
                raise BadRequest(404, f"no route {request.method} {path}")
            declared = int(request.headers.get("content-length") or 0)
            if declared > MAX_BODY_BYTES:
                raise BadRequest(413, f"request body of {declared} bytes is over {MAX_BODY_BYTES}")
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                raise BadRequest(413, f"request body of {len(body)} bytes is over {MAX_BODY_BYTES}")
            if path in (f"{prefix}/infer", f"{prefix}/versions/1/infer"):
                length = request.headers.get("inference-header-content-length")
                try:
                    header_length = None if length is None else int(length)
                except ValueError as exc:
                    raise BadRequest(
                        400, f"Inference-Header-Content-Length {length!r} is not a number"
                    ) from exc
                array, binary = kserve_input(body, self.model, header_length)
                out = await self.infer(array)
                content, headers = kserve_output(name, "1", self.model.output_name, out, binary)
                return Response(content, headers=headers)
            if path == f"/{name}":
                out = await self.infer(plain_input(body, self.model))
                return JSONResponse({"predictions": out.tolist()})
            if path.startswith("/v2/models/"):
                raise BadRequest(404, f"unknown model in {path}: this server serves {name!r}")
            raise BadRequest(404, f"no route POST {path}")

    # The ONNX bytes travel with the application, so a replica on another machine of a cluster needs no
    # shared file system.
    return Model.bind(Path(config["onnx_file"]).read_bytes())  # type: ignore[attr-defined]


def main(config_path: str) -> None:
    from bakeoff import ray_cluster

    config = json.loads(Path(config_path).read_text())
    address = config.get("address")
    ray_cluster.before_import(address)
    import ray
    from ray import serve

    ray_cluster.init(address, config["temp_dir"])
    # On someone else's cluster the proxy must answer from outside its node; here only on 127.0.0.1.
    host = "0.0.0.0" if address and address not in ("auto", "local") else "127.0.0.1"
    serve.start(http_options={"host": host, "port": int(config["port"])})
    serve.run(build_app(config), name=config["name"], route_prefix="/", blocking=False)
    print("bakeoff: ray serve deployed", flush=True)
    # The launcher asks for a clean stop by creating this file: Ray's own handlers take SIGTERM in the driver.
    stop_file = Path(config["stop_file"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2) and not stop_file.exists():
        pass
    if address:  # someone else's cluster: take our application away, leave the cluster running
        serve.delete(config["name"])
    else:
        serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
