"""TorchServe's inference API as bakeoff's handler speaks it: `POST /predictions/{model}[/{version}]` with
the batch as a nested JSON list, answered with a nested list; the endpoint's token header travels along."""

from __future__ import annotations

from bakeoff.stages.serve.protocols._jsonlist import JsonListCodec
from bakeoff.stages.serve.servers.base import Endpoint


class TorchServeCodec(JsonListCodec):
    protocol = "torchserve-rest"

    def path(self, endpoint: Endpoint) -> str:
        version = f"/{endpoint.version}" if endpoint.version else ""
        return f"/predictions/{endpoint.model}{version}"


codec = TorchServeCodec()
