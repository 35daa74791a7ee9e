"""Ray Serve's plain JSON route of bakeoff's deployment (servers/ray_app.py): `POST /{model}` with the
batch as a nested JSON list, answered with `{"predictions": [...]}`. The same deployment also speaks
KServe v2 JSON, which is what puts Ray Serve in Triton's protocol row."""

from __future__ import annotations

from bakeoff.stages.serve.protocols._jsonlist import JsonListCodec
from bakeoff.stages.serve.servers.base import Endpoint


class RayHttpCodec(JsonListCodec):
    protocol = "ray-http"
    answer_key = "predictions"

    def path(self, endpoint: Endpoint) -> str:
        return f"/{endpoint.model}"


codec = RayHttpCodec()
