"""Request codecs, one module per wire protocol, looked up by an Endpoint's `protocol` name."""

from __future__ import annotations

import importlib
from typing import Any

from bakeoff.errors import BakeoffError

# protocol name -> module with a module-level `codec`
PROTOCOLS = {
    "kserve-v2-http": "bakeoff.stages.serve.protocols.kserve",
    "kserve-v2-grpc": "bakeoff.stages.serve.protocols.kserve_grpc",
    "tfserving-rest": "bakeoff.stages.serve.protocols.tfserving",
    "tfserving-grpc": "bakeoff.stages.serve.protocols.tfserving_grpc",
    "torchserve-rest": "bakeoff.stages.serve.protocols.torchserve",
    "ray-http": "bakeoff.stages.serve.protocols.ray_http",
}


def codec(protocol: str) -> Any:
    if protocol not in PROTOCOLS:
        raise BakeoffError(f"no codec for protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    return importlib.import_module(PROTOCOLS[protocol]).codec
