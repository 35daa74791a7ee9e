"""bakeoff's implementation of TF Serving's APIs, for machines without `tensorflow_model_server`: the REST
API (`/v1/models/{m}[/versions/{v}|/labels/{l}][:predict|/metadata]`, `{"error": ...}` bodies) and gRPC
PredictionService (Predict, GetModelMetadata) over the SavedModels of a TF Serving model base path
(`<base>/<version>/saved_model.pb`), with server-side batching, a bounded queue and `/metrics`.

Run as its own process:
`python -m bakeoff.stages.serve.servers.tfserving_app --base-path ... --model-name ...`.

Promises: a client error is always a 4xx with a message (never a 5xx); when more than `--max-queue`
requests wait, new ones get 429 (or 503, --overload-status) with Retry-After at once (the server does not
collapse); every accepted request is answered, also on SIGTERM (it drains before exiting). It is a
stand-in, and says so in every answer's Server header (bakeoff-tfserving-api), never posing as TF Serving's
own performance.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SERVER_HEADER = "bakeoff-tfserving-api"

try:  # orjson parses a 784-float request 8x faster than json here; the server works without it
    import orjson

    def _loads(body: bytes) -> Any:
        return orjson.loads(body)

    def _dumps(doc: Any) -> bytes:
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)

    JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - the serve extra installs orjson

    def _loads(body: bytes) -> Any:
        return json.loads(body)

    def _dumps(doc: Any) -> bytes:
        return json.dumps(doc, separators=(",", ":"), default=lambda a: a.tolist()).encode()

    JSONError = (ValueError, UnicodeDecodeError)


class ClientError(Exception):
    """A request the client got wrong: answered with `status` (4xx) and the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Overloaded(Exception):
    pass


@dataclass
class Signature:
    inputs: dict[str, tuple[str, tuple[int | None, ...]]]  # name -> (numpy dtype, shape with batch None)
    outputs: dict[str, tuple[str, tuple[int | None, ...]]]


@dataclass
class Servable:
    """One loaded version: its signature and a function from named arrays to named arrays."""

    version: int
    signature: Signature
    run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    batcher: Batcher | None = None


@dataclass
class _Item:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]


@dataclass
class Batcher:
    """Queues requests for one servable and runs them, merged into batches of at most `max_batch` rows
    when batching is on (waiting at most `max_delay_s` for a batch to fill), one by one when it is off."""

    servable_run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    executor: ThreadPoolExecutor
    workers: int
    batching: bool
    max_batch: int
    max_delay_s: float
    stats: Stats
    queue: deque[_Item] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: int = 0

    async def submit(self, inputs: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self.queue.append(_Item(inputs, rows, future))
        self.wake.set()
        return await future

    async def loop(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.workers)
        while True:
            while not self.queue:
                self.wake.clear()
                await self.wake.wait()
            await slots.acquire()
            if self.batching:
                deadline = loop.time() + self.max_delay_s
                while sum(i.rows for i in self.queue) < self.max_batch and loop.time() < deadline:
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), deadline - loop.time())
            items = self._take()
            task = loop.create_task(self._run(items))
            task.add_done_callback(lambda _t: slots.release())

    def _take(self) -> list[_Item]:
        items = [self.queue.popleft()]
        if not self.batching:
            return items
        rows = items[0].rows
        while self.queue and rows + self.queue[0].rows <= self.max_batch:
            item = self.queue.popleft()
            items.append(item)
            rows += item.rows
        return items

    async def _run(self, items: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if len(items) == 1:
                merged = items[0].inputs
            else:
                merged = {k: np.concatenate([i.inputs[k] for i in items]) for k in items[0].inputs}
            self.stats.batch(sum(i.rows for i in items))
            outputs = await loop.run_in_executor(self.executor, self.servable_run, merged)
        except Exception as exc:  # the model failed on valid input: every request in the batch learns it
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        start = 0
        for item in items:
            part = {k: v[start : start + item.rows] for k, v in outputs.items()}
            start += item.rows
            if not item.future.done():
                item.future.set_result(part)


class Stats:
    """Prometheus metrics of the server, in its own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bakeoff_tfserving_requests",
            "Predict requests by model, version, API and outcome",
            ["model", "version", "api", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bakeoff_tfserving_request_seconds",
            "Predict latency inside the server",
            ["api"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "bakeoff_tfserving_batch_rows",
            "Rows per model call (server-side batching)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.queued = Gauge(
            "bakeoff_tfserving_queued", "Requests accepted and not yet answered", registry=self.registry
        )
        self.rejected = Counter(
            "bakeoff_tfserving_rejected",
            "Requests refused with 429 or 503 (queue full)",
            registry=self.registry,
        )
        self.batches: dict[int, int] = {}

    def batch(self, rows: int) -> None:
        self.batch_rows.observe(rows)
        self.batches[rows] = self.batches.get(rows, 0) + 1


class Model:
    """Every version of one model, its labels and the admission control in front of them."""

    def __init__(
        self,
        name: str,
        servables: dict[int, Servable],
        labels: dict[str, int],
        max_queue: int,
        overload_status: int = 429,
    ) -> None:
        self.name = name
        self.overload_status = overload_status
        self.servables = servables
        self.labels = labels
        self.max_queue = max_queue
        self.in_flight = 0

    def resolve(self, name: str, version: str | None, label: str | None) -> Servable:
        if name != self.name:
            what = f"Version({version})" if version else f"Label({label})" if label else "Latest"
            raise ClientError(f"Servable not found for request: {what}({name})", 404)
        if label is not None:
            if label not in self.labels:
                raise ClientError(
                    f"Unrecognized servable version label: {label} "
                    f"(labels: {', '.join(self.labels) or 'none'})",
                    404,
                )
            return self.servables[self.labels[label]]
        if version is None:
            return self.servables[max(self.servables)]
        try:
            v = int(version)
        except ValueError:
            raise ClientError(f"version must be an integer, got {version!r}", 400) from None
        if v not in self.servables:
            raise ClientError(f"Servable not found for request: Specific({self.name}, {v})", 404)
        return self.servables[v]

    async def predict(
        self, servable: Servable, inputs: dict[str, np.ndarray], rows: int
    ) -> dict[str, np.ndarray]:
        if self.in_flight >= self.max_queue:
            raise Overloaded(
                f"server overloaded: {self.in_flight} requests queued (max {self.max_queue}); retry later"
            )
        self.in_flight += 1
        try:
            assert servable.batcher is not None
            return await servable.batcher.submit(inputs, rows)
        finally:
            self.in_flight -= 1


# ------------------------------------------------------------------------------------------ input checks


def check_inputs(signature: Signature, inputs: dict[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    """Named values -> arrays of the signature's dtypes and shapes; a ClientError says what is wrong."""
    missing = [n for n in signature.inputs if n not in inputs]
    extra = [n for n in inputs if n not in signature.inputs]
    if missing or extra:
        raise ClientError(
            f"input names {sorted(inputs)} do not match the signature's inputs {sorted(signature.inputs)}"
        )
    arrays: dict[str, np.ndarray] = {}
    rows = -1
    for name, value in inputs.items():
        dtype, shape = signature.inputs[name]
        try:
            if isinstance(value, np.ndarray):
                if value.dtype.kind != np.dtype(dtype).kind and not (
                    value.dtype.kind in "iu" and np.dtype(dtype).kind in "iuf"
                ):
                    raise ClientError(f"input '{name}': expects dtype {dtype}, got {value.dtype.name}")
                array = value.astype(dtype, copy=False)
            else:
                raw = np.asarray(value)
                if raw.dtype.kind not in "iufb":
                    raise ClientError(
                        f"input '{name}': expects {dtype} numbers, got {raw.dtype.name} values"
                        + (" (ragged lists?)" if raw.dtype == object else "")
                    )
                if raw.dtype.kind == "f" and np.dtype(dtype).kind in "iu":
                    raise ClientError(f"input '{name}': expects integers ({dtype}), got floats")
                array = raw.astype(dtype)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ClientError(f"input '{name}': cannot read it as {dtype}: {exc}") from None
        if array.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, array.shape, strict=False)
        ):
            want = "[" + ", ".join("-1" if s is None else str(s) for s in shape) + "]"
            raise ClientError(f"input '{name}': expects shape {want}, got {list(array.shape)}")
        if rows >= 0 and array.shape[0] != rows:
            raise ClientError(f"inputs have different batch sizes ({rows} and {array.shape[0]})")
        rows = int(array.shape[0])
        arrays[name] = array
    if rows == 0:
        raise ClientError("the request has no instances (batch of 0)")
    return arrays, rows


def parse_predict(signature: Signature, body: bytes) -> tuple[dict[str, np.ndarray], int, str]:
    """A REST predict body -> (arrays, rows, 'row'|'columnar')."""
    try:
        doc = _loads(body)
    except JSONError as exc:
        raise ClientError(f"JSON Parse error: {exc}") from None
    if not isinstance(doc, dict):
        raise ClientError("the request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in doc) == ("inputs" in doc):
        raise ClientError(
            "the request must have exactly one of 'instances' (row format) or 'inputs' (columnar)"
        )
    names = list(signature.inputs)
    if "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise ClientError("'instances' must be a list")
        if len(names) == 1 and not (instances and isinstance(instances[0], dict)):
            values: dict[str, Any] = {names[0]: instances}
        else:
            if not all(isinstance(i, dict) for i in instances):
                raise ClientError("with several inputs, every instance must be an object of named inputs")
            values = {n: [i.get(n) for i in instances] for n in names}
        arrays, rows = check_inputs(signature, values)
        return arrays, rows, "row"
    inputs = doc["inputs"]
    values = inputs if isinstance(inputs, dict) else {names[0]: inputs}
    arrays, rows = check_inputs(signature, values)
    return arrays, rows, "columnar"


# ------------------------------------------------------------------------------------------- loading


def load_savedmodel(
    path: Path, threads: int
) -> tuple[Signature, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    _, kwargs = fn.structured_input_signature
    inputs = {k: (v.dtype.as_numpy_dtype().dtype.name, tuple(v.shape.as_list())) for k, v in kwargs.items()}
    outputs = {
        k: (v.dtype.as_numpy_dtype().dtype.name, tuple(v.shape.as_list()))
        for k, v in fn.structured_outputs.items()
    }

    def run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = fn(**{k: tf.constant(v) for k, v in arrays.items()})
        return {k: v.numpy() for k, v in result.items()}

    _ = loaded  # keep the trackable alive with the function
    run.loaded = loaded  # type: ignore[attr-defined]
    return Signature(inputs, outputs), run


def noop_model(
    input_shape: list[int], output_shape: list[int], dtype: str, name: str = "x"
) -> tuple[Signature, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]:
    """A model that answers zeros at once: the server stack's own ceiling."""
    signature = Signature(
        {name: (dtype, (None, *input_shape))}, {"output_0": ("float32", (None, *output_shape))}
    )

    def run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(arrays.values())))
        return {"output_0": np.zeros((n, *output_shape), dtype=np.float32)}

    return signature, run


def versions_in(base: Path) -> list[int]:
    found = sorted(
        int(p.name)
        for p in base.iterdir()
        if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists()
    )
    if not found:
        raise SystemExit(f"no version folder with a saved_model.pb under {base}")
    return found


# --------------------------------------------------------------------------------------------- REST


def _json(status: int, doc: Any) -> Any:
    from aiohttp import web

    return web.Response(
        status=status,
        body=_dumps(doc),
        content_type="application/json",
        headers={"Server": SERVER_HEADER},
    )


def _error(status: int, message: str) -> Any:
    response = _json(status, {"error": message})
    if status in (429, 503):
        response.headers["Retry-After"] = "1"
    return response


def _split_path(tail: str) -> tuple[str, str | None, str | None, str]:
    """'m/versions/2:predict' -> ('m', '2', None, 'predict'); the verb is '' for status, 'metadata' too."""
    verb = ""
    if ":" in tail:
        tail, verb = tail.rsplit(":", 1)
    parts = [p for p in tail.split("/") if p]
    if parts and parts[-1] == "metadata":
        verb = verb or "metadata"
        parts = parts[:-1]
    if not parts:
        raise ClientError(
            "no model name in the URL: /v1/models/<name>[/versions/<v>|/labels/<l>][:predict]", 404
        )
    name, version, label = parts[0], None, None
    rest = parts[1:]
    if rest:
        if len(rest) != 2 or rest[0] not in ("versions", "labels"):
            raise ClientError(f"malformed request path: /v1/models/{tail}", 404)
        version, label = (rest[1], None) if rest[0] == "versions" else (None, rest[1])
    return name, version, label, verb


def _signature_doc(s: Servable, name: str) -> dict[str, Any]:
    def tensors(specs: dict[str, tuple[str, tuple[int | None, ...]]]) -> dict[str, Any]:
        return {
            k: {
                "dtype": "DT_"
                + {"float32": "FLOAT", "float64": "DOUBLE", "int64": "INT64", "int32": "INT32"}.get(
                    d, d.upper()
                ),
                "tensor_shape": {
                    "dim": [{"size": str(-1 if x is None else x), "name": ""} for x in shape],
                    "unknown_rank": False,
                },
                "name": f"serving_default_{k}:0",
            }
            for k, (d, shape) in specs.items()
        }

    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(s.version)},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": tensors(s.signature.inputs),
                        "outputs": tensors(s.signature.outputs),
                        "method_name": "tensorflow/serving/predict",
                    }
                }
            }
        },
    }


def _status_doc(model: Model, versions: list[int]) -> dict[str, Any]:
    return {
        "model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]
    }


def make_app(model: Model, stats: Stats, max_body: int) -> Any:
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except ClientError as exc:
            return _error(exc.status, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body over the server's limit of {max_body} bytes")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return _error(exc.status, exc.reason)
            raise

    async def models(request: web.Request) -> web.Response:
        name, version, label, verb = _split_path(request.match_info["tail"])
        if request.method == "GET":
            if verb not in ("", "metadata"):
                raise ClientError(f"GET does not support :{verb}; POST to :predict", 405)
            servable = model.resolve(name, version, label)
            if verb == "metadata":
                return _json(200, _signature_doc(servable, name))
            versions = [servable.version] if (version or label) else sorted(model.servables)
            return _json(200, _status_doc(model, versions))
        if verb != "predict":
            raise ClientError(
                f"':{verb or '(none)'}' is not supported by this server; use ':predict'"
                + (
                    " (classify and regress need tf.Example signatures)"
                    if verb in ("classify", "regress")
                    else ""
                ),
                400 if verb in ("classify", "regress") else 404,
            )
        started = time.perf_counter()
        servable = model.resolve(name, version, label)
        body = await request.read()
        arrays, rows, style = parse_predict(servable.signature, body)
        code = "200"
        try:
            outputs = await model.predict(servable, arrays, rows)
        except Overloaded as exc:
            stats.rejected.inc()
            code = str(model.overload_status)
            return _error(model.overload_status, str(exc))
        finally:
            stats.requests.labels(model.name, str(servable.version), "rest", code).inc()
            stats.latency.labels("rest").observe(time.perf_counter() - started)
        return _json(200, _outputs_doc(outputs, style))

    async def metrics(request: web.Request) -> web.Response:
        stats.queued.set(model.in_flight)
        return web.Response(
            body=generate_latest(stats.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def labels(request: web.Request) -> web.Response:
        """bakeoff's admin route (TF Serving does this by config reload): PUT {"version": N} moves a label."""
        label = request.match_info["label"]
        try:
            version = int((await request.json())["version"])
        except (ValueError, KeyError, TypeError):
            raise ClientError('the body must be {"version": <int>}') from None
        if version not in model.servables:
            raise ClientError(f"version {version} is not loaded (loaded: {sorted(model.servables)})", 404)
        model.labels[label] = version
        return _json(200, {"labels": model.labels})

    async def fallback(request: web.Request) -> web.Response:
        raise ClientError(
            f"no such route: {request.method} {request.path} (try /v1/models/{model.name})", 404
        )

    app = web.Application(client_max_size=max_body, middlewares=[errors])
    app.router.add_route("*", "/v1/models/{tail:.*}", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/monitoring/prometheus/metrics", metrics)
    app.router.add_put("/bakeoff/labels/{label}", labels)
    app.router.add_route("*", "/{tail:.*}", fallback)
    return app


def _outputs_doc(outputs: dict[str, np.ndarray], style: str) -> dict[str, Any]:
    if style == "row":
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        cols = {k: v.tolist() for k, v in outputs.items()}
        n = len(next(iter(cols.values())))
        return {"predictions": [{k: c[i] for k, c in cols.items()} for i in range(n)]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values()))}
    return {"outputs": dict(outputs)}


# --------------------------------------------------------------------------------------------- gRPC


def make_grpc(model: Model, stats: Stats, port: int, max_body: int) -> Any:
    import grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

    from bakeoff.stages.serve.protocols.tensor_proto import TensorError, from_proto, to_proto

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request: Any, context: Any) -> Any:
            spec = request.model_spec
            started = time.perf_counter()
            try:
                servable = model.resolve(
                    spec.name,
                    str(spec.version.value) if spec.HasField("version") else None,
                    spec.version_label or None,
                )
                try:
                    values = {k: from_proto(v) for k, v in request.inputs.items()}
                except TensorError as exc:
                    raise ClientError(str(exc)) from None
                arrays, rows = check_inputs(servable.signature, values)
                outputs = await model.predict(servable, arrays, rows)
            except ClientError as exc:
                code = grpc.StatusCode.NOT_FOUND if exc.status == 404 else grpc.StatusCode.INVALID_ARGUMENT
                await context.abort(code, str(exc))
            except Overloaded as exc:
                stats.rejected.inc()
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            stats.requests.labels(model.name, str(servable.version), "grpc", "200").inc()
            stats.latency.labels("grpc").observe(time.perf_counter() - started)
            reply = predict_pb2.PredictResponse()
            reply.model_spec.name = model.name
            reply.model_spec.version.value = servable.version
            reply.model_spec.signature_name = "serving_default"
            for k, v in outputs.items():
                if not request.output_filter or k in request.output_filter:
                    to_proto(np.ascontiguousarray(v), reply.outputs[k])
            return reply

        async def GetModelMetadata(self, request: Any, context: Any) -> Any:
            spec = request.model_spec
            try:
                servable = model.resolve(
                    spec.name,
                    str(spec.version.value) if spec.HasField("version") else None,
                    spec.version_label or None,
                )
            except ClientError as exc:
                await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            from google.protobuf import json_format
            from tensorflow_serving.apis import get_model_metadata_pb2 as gmm

            reply = gmm.GetModelMetadataResponse()
            reply.model_spec.name = model.name
            reply.model_spec.version.value = servable.version
            sig = gmm.SignatureDefMap()
            json_format.ParseDict(
                _signature_doc(servable, model.name)["metadata"]["signature_def"],
                sig,
                ignore_unknown_fields=True,
            )
            reply.metadata["signature_def"].Pack(sig)
            return reply

    _ = get_model_metadata_pb2
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", max_body), ("grpc.max_send_message_length", 64 << 20)]
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    return server


# --------------------------------------------------------------------------------------------- main


async def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    stats = Stats()
    executor = ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="model")
    servables: dict[int, Servable] = {}
    if args.noop:
        signature, run = noop_model(args.noop_input, args.noop_output, args.noop_dtype, args.noop_name)
        servables[1] = Servable(1, signature, run)
    else:
        _threads(args.threads)
        for v in versions_in(Path(args.base_path)):
            signature, run = load_savedmodel(Path(args.base_path) / str(v), args.threads)
            servables[v] = Servable(v, signature, run)
    labels = dict(_label(x) for x in args.label)
    for s in servables.values():
        s.batcher = Batcher(
            s.run, executor, args.workers, args.batching, args.max_batch, args.max_delay_ms / 1000, stats
        )
        _warm(s)
    model = Model(args.model_name, servables, labels, args.max_queue, args.overload_status)
    tasks = [
        asyncio.get_running_loop().create_task(s.batcher.loop()) for s in servables.values() if s.batcher
    ]

    runner = web.AppRunner(make_app(model, stats, args.max_body), access_log=None, shutdown_timeout=30)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.rest_port, backlog=1024).start()
    grpc_server = None
    if args.grpc_port:
        grpc_server = make_grpc(model, stats, args.grpc_port, args.max_body)
        await grpc_server.start()
    print(
        f"serving {args.model_name} versions {sorted(servables)} "
        f"on REST :{args.rest_port} gRPC :{args.grpc_port}",
        flush=True,
    )

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    # Drain: stop accepting, answer everything accepted, then exit.
    if grpc_server is not None:
        await grpc_server.stop(grace=10)
    await runner.cleanup()
    for t in tasks:
        t.cancel()
    executor.shutdown(wait=True)


def _threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _warm(s: Servable) -> None:
    inputs = {
        k: np.zeros((1, *[1 if d is None else d for d in shape[1:]]), dtype=dtype)
        for k, (dtype, shape) in s.signature.inputs.items()
    }
    s.run(inputs)


def _label(text: str) -> tuple[str, int]:
    name, _, version = text.partition("=")
    return name, int(version)


def main() -> None:
    parser = argparse.ArgumentParser(description="bakeoff's TF Serving API server")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--base-path", default="")
    parser.add_argument("--rest-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--batching", action="store_true")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-delay-ms", type=float, default=2.0)
    parser.add_argument("--max-queue", type=int, default=1024)
    parser.add_argument("--max-body", type=int, default=16 << 20)
    parser.add_argument(
        "--overload-status",
        type=int,
        choices=(429, 503),
        default=429,
        help="answer to a request refused because the queue is full (429: no 5xx ever for load)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--label", action="append", default=[], help="NAME=VERSION")
    parser.add_argument("--noop", action="store_true", help="a model answering zeros: the stack's ceiling")
    parser.add_argument("--noop-input", type=int, nargs="*", default=[784])
    parser.add_argument("--noop-output", type=int, nargs="*", default=[10])
    parser.add_argument("--noop-dtype", default="float32")
    parser.add_argument("--noop-name", default="x")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    asyncio.run(serve(args))
    # Every accepted request is answered by now; TensorFlow's interpreter teardown can take seconds, past
    # a launcher's grace period, so the process ends here.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
