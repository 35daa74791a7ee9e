"""Ray Serve started by bakeoff on simplenet's ONNX export with @serve.batch, driven with `requests` over
KServe v2 JSON and the plain route: answers match the in-process model, bad inputs get 4xx answers, and
no raylet, GCS or replica outlives stop()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests

from bakeoff.stages.serve.protocols.ray_http import codec
from bakeoff.stages.serve.servers.base import Endpoint
from tests.stages.serve.servers._bad import bad_input_statuses
from tests.stages.serve.servers.conftest import Exported, available, group_left, mentioning, serve_model

# One xdist group with the other server tests: they share one export of simplenet.
pytestmark = pytest.mark.xdist_group("serve-servers")


def test_codec_posts_a_list_and_reads_predictions() -> None:
    request = codec.encode(
        Endpoint("ray-http", "http://127.0.0.1:1", "m"), {"x": np.zeros((1, 2), np.float32)}
    )
    assert request.method == "POST" and request.path == "/m" and request.body == b"[[0.0,0.0]]"
    assert codec.decode(200, b'{"predictions": [[0.5]]}').tolist() == [[0.5]]


@pytest.mark.slow
def test_ray_serve_serves_the_export(exported: Exported, tmp_path: Path) -> None:
    launcher = available("ray")
    running = launcher.start(serve_model(exported, tmp_path))
    temp_dir = running.extra["temp_dir"]
    try:
        assert running.implementation.startswith("Ray Serve") and "@serve.batch" in running.implementation
        http = running.extra["http"]
        x = exported.x
        body = {
            "inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]
        }
        answer = requests.post(f"{http}/v2/models/simplenet/infer", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        out = answer.json()["outputs"][0]
        np.testing.assert_allclose(np.reshape(out["data"], out["shape"]), exported.reference, atol=1e-4)
        plain = requests.post(f"{http}/simplenet", json=x.tolist(), timeout=30)
        np.testing.assert_allclose(np.asarray(plain.json()["predictions"]), exported.reference, atol=1e-4)
        statuses = bad_input_statuses(
            lambda m: f"{http}/v2/models/{m}/infer",
            "simplenet",
            lambda a: {
                "inputs": [{"name": "x", "shape": list(a.shape), "datatype": "FP32", "data": a.tolist()}]
            },
            x,
            {},
        )
        print("ray bad inputs:", statuses)
        assert all(400 <= s < 500 for s in statuses.values()), statuses  # bakeoff's own deployment code
    finally:
        running.stop()
    assert group_left(running.pid) == []
    assert mentioning(temp_dir) == [] and mentioning(str(tmp_path)) == []
    assert not Path(temp_dir).exists()


def test_load_goes_to_the_clusters_head_or_here() -> None:
    from bakeoff.stages.serve.servers.ray_serve import proxy_host

    assert proxy_host(None) == proxy_host("auto") == "127.0.0.1"
    assert proxy_host("ray://head:10001") == "head" and proxy_host("10.0.0.5:6379") == "10.0.0.5"
