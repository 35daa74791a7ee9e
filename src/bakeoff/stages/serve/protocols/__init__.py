"""Request codecs, one module per wire protocol, looked up by an Endpoint's `protocol` name.

The contract every codec module follows (the load generator, the correctness check and the bad-input matrix
drive every server through it, so one client serves them all):

* A module exposes `codec` (its default encoding) and may expose `variants: dict[str, codec]` for other
  encodings of the same protocol (KServe v2 'json' / 'binary'; TF Serving REST 'row' / 'columnar').
  `codec(protocol, variant)` returns one.

* An **HTTP codec** (`transport == "http"`) turns inputs into bytes and bytes back into an array; it does
  no I/O, so the load generator keeps its fast client and a test can use `requests`::

      encode(endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Request
          # Request(method, path, headers, body); path includes the query, relative to endpoint.address
      decode(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> np.ndarray
          # the (first) output, batch axis first; raises CodecError(status, message) for a non-2xx status
          # or a body it cannot read. `headers` keys are lower-case (KServe binary needs
          # inference-header-content-length).

* A **gRPC codec** (`transport == "grpc"`) owns its channel, since gRPC's client is the transport::

      client(endpoint: Endpoint, timeout_s: float) -> GrpcClient
      GrpcClient.infer(inputs) -> np.ndarray        # async (grpc.aio); raises CodecError(status, message)
      GrpcClient.infer_sync(inputs) -> np.ndarray   # blocking, for checks
      GrpcClient.close()                            # async

  `CodecError.status` for gRPC is the grpc.StatusCode name ('INVALID_ARGUMENT', 'NOT_FOUND', ...).

`inputs` maps the model's input names (ServeModel.inputs[i].name) to arrays with the batch axis first; a
codec that speaks a single-input protocol (TorchServe, Ray) sends the first. `send(endpoint, inputs)` here
is a blocking one-shot client over either transport for correctness checks and examples.
"""

from __future__ import annotations

import http.client
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.stages.serve.servers.base import Endpoint

# protocol name -> module with a module-level `codec`
PROTOCOLS = {
    "kserve-v2-http": "bakeoff.stages.serve.protocols.kserve",
    "kserve-v2-grpc": "bakeoff.stages.serve.protocols.kserve_grpc",
    "tfserving-rest": "bakeoff.stages.serve.protocols.tfserving",
    "tfserving-grpc": "bakeoff.stages.serve.protocols.tfserving_grpc",
    "torchserve-rest": "bakeoff.stages.serve.protocols.torchserve",
    "ray-http": "bakeoff.stages.serve.protocols.ray_http",
}


@dataclass(frozen=True)
class Request:
    """One HTTP request, ready to send to `endpoint.address + path`."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class CodecError(BakeoffError):
    """A server's answer that is not a result: its status (HTTP code or gRPC status name) and message."""

    def __init__(self, status: int | str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@runtime_checkable
class HttpCodec(Protocol):
    protocol: str
    transport: str  # "http"

    def encode(self, endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Request: ...

    def decode(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> np.ndarray: ...


class GrpcClient(Protocol):
    async def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...

    def infer_sync(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...

    async def close(self) -> None: ...


class GrpcCodec(Protocol):
    protocol: str
    transport: str  # "grpc"

    def client(self, endpoint: Endpoint, timeout_s: float) -> GrpcClient: ...


def codec(protocol: str, variant: str | None = None) -> Any:
    if protocol not in PROTOCOLS:
        raise BakeoffError(f"no codec for protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    module = importlib.import_module(PROTOCOLS[protocol])
    if variant is None:
        return module.codec
    variants: dict[str, Any] = getattr(module, "variants", {})
    if variant not in variants:
        raise BakeoffError(f"protocol '{protocol}' has no variant '{variant}' (it has {', '.join(variants)})")
    return variants[variant]


def http_send(address: str, request: Request, timeout_s: float = 30.0) -> tuple[int, bytes, dict[str, str]]:
    """Send one request with the standard library; return (status, body, lower-case headers)."""
    parts = urlsplit(address)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout_s)
    try:
        conn.request(request.method, request.path, body=request.body, headers=request.headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def send(
    endpoint: Endpoint, inputs: dict[str, np.ndarray], variant: str | None = None, timeout_s: float = 30.0
) -> np.ndarray:
    """One blocking inference over the endpoint's protocol; raises CodecError for an error answer."""
    c = codec(endpoint.protocol, variant)
    if c.transport == "grpc":
        client = c.client(endpoint, timeout_s)
        try:
            return np.asarray(client.infer_sync(inputs))
        finally:
            close_sync = getattr(client, "close_sync", None)
            if close_sync is not None:
                close_sync()
    request = c.encode(endpoint, inputs)
    status, body, headers = http_send(endpoint.address, request, timeout_s)
    return np.asarray(c.decode(status, body, headers))
