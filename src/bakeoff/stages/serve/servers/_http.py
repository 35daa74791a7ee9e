"""Small helpers the launchers share: stdlib HTTP for readiness, first inference and management calls
(starting a server needs neither the load generator nor a client library), options, child environments."""

from __future__ import annotations

import http.client
import json
import os
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bakeoff.stages.serve.servers.base import HOST

# numpy dtype name -> KServe v2 datatype (the subset bakeoff's models take)
KSERVE_TYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "int8": "INT8",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """(status, body) of one HTTP request; raises OSError when nothing answers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
    status, body = request("GET", url, headers=headers, timeout=timeout)
    if status != 200:
        raise OSError(f"GET {url}: {status} {body[:200]!r}")
    return json.loads(body)


def sample_batch(specs: Any, batch: int = 1) -> dict[str, np.ndarray]:
    """Zeros of each input's shape (a -1 axis as 1), for a first inference."""
    return {s.name: np.zeros((batch, *[d if d > 0 else 1 for d in s.shape]), dtype=s.dtype) for s in specs}


def kserve_body(inputs: dict[str, np.ndarray]) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": list(a.shape),
                    "datatype": KSERVE_TYPES[a.dtype.name],
                    "data": a.ravel().tolist(),
                }
                for name, a in inputs.items()
            ]
        }
    ).encode()


def options_of(model: Any) -> dict[str, Any]:
    """ServeModel.options (launcher-specific settings: 'noop', 'ray_address'), {} where it is absent."""
    return dict(getattr(model, "options", None) or {})


def child_env(extra_path: list[str] | None = None, **variables: str) -> dict[str, str]:
    """The caller's environment without what would make another interpreter load bakeoff's packages."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if extra_path:
        env["PATH"] = os.pathsep.join([*extra_path, env.get("PATH", "")])
    env.update(variables)
    return env
