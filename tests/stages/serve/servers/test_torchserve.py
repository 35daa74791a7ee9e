"""TorchServe started by bakeoff on simplenet's .mar, driven with `requests`: token auth on (the key from
key_file.json), batching on, answers match the in-process model, the versions API registers and defaults
version 2, metrics scrape, bad inputs get answers, and no java outlives stop()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests

from bakeoff.stages.serve.protocols import send
from bakeoff.stages.serve.protocols.torchserve import codec
from bakeoff.stages.serve.servers import torchserve
from bakeoff.stages.serve.servers.base import Endpoint
from tests.stages.serve.servers._bad import bad_input_statuses
from tests.stages.serve.servers.conftest import Exported, available, group_left, mentioning, serve_model

# One xdist group with the other server tests: they share one export of simplenet.
pytestmark = pytest.mark.xdist_group("serve-servers")


def test_codec_sends_the_token_and_reads_lists_and_errors() -> None:
    endpoint = Endpoint("torchserve-rest", "http://127.0.0.1:1", "m", "2.0", (("Authorization", "Bearer k"),))
    request = codec.encode(endpoint, {"x": np.ones((2, 3), np.float32)})
    assert request.path == "/predictions/m/2.0" and request.headers["Authorization"] == "Bearer k"
    assert request.body == b"[[1.0,1.0,1.0],[1.0,1.0,1.0]]"
    assert codec.decode(200, b"[[1, 2]]").tolist() == [[1.0, 2.0]]
    with pytest.raises(Exception, match="400: bad"):
        codec.decode(400, b'{"code": 400, "type": "X", "message": "bad"}')


@pytest.mark.slow
def test_torchserve_serves_the_mar_with_token_auth(exported: Exported, tmp_path: Path) -> None:
    launcher = available("torchserve")
    model = serve_model(exported, tmp_path)
    running = launcher.start(model)
    try:
        assert running.implementation.startswith("TorchServe 0.12") and running.cold_start_s > 0
        endpoint = running.endpoint("torchserve-rest")
        url = f"{endpoint.address}/predictions/simplenet"
        key = {"Authorization": f"Bearer {running.extra['inference_key']}"}
        answer = requests.post(url, json=exported.x.tolist(), headers=key, timeout=30)
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(np.asarray(answer.json()), exported.reference, atol=1e-4)
        assert requests.post(url, json=exported.x.tolist(), timeout=30).status_code in (400, 401)  # no key
        np.testing.assert_allclose(send(endpoint, {"x": exported.x}), exported.reference, atol=1e-4)

        torchserve.register_version(running, model, "2.0")
        torchserve.set_default(running, "2.0")
        management = running.extra["management_url"]
        versions = requests.get(
            f"{management}/models/simplenet/all",
            headers={"Authorization": f"Bearer {running.extra['management_key']}"},
            timeout=10,
        ).json()
        assert sorted(v["modelVersion"] for v in versions) == ["1.0", "2.0"]
        v2 = requests.post(f"{url}/2.0", json=exported.x.tolist(), headers=key, timeout=30)
        assert v2.status_code == 200, v2.text

        metrics = requests.get(running.extra["metrics_url"], timeout=10)
        assert metrics.status_code == 200 and "ts_inference_requests_total" in metrics.text
        statuses = bad_input_statuses(
            lambda m: f"{endpoint.address}/predictions/{m}",
            "simplenet",
            lambda a: a.tolist(),
            exported.x,
            key,
        )
        print("torchserve bad inputs:", statuses)
        # bakeoff's handler refuses each bad request with a 400 of its own; TorchServe's front end
        # answers the oversized body (413) and the unknown model (404): no 5xx for a client's mistake.
        assert all(400 <= s < 500 for s in statuses.values()), statuses
        assert requests.post(url, json=exported.x.tolist(), headers=key, timeout=30).status_code == 200
    finally:
        running.stop()
    assert group_left(running.pid) == []
    assert mentioning(str(tmp_path)) == []  # no java, no worker


def test_without_java_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torchserve.shutil, "which", lambda _name: None)
    reason = torchserve.TorchServeLauncher().unavailable()
    assert reason is not None and "openjdk-17-jre-headless" in reason
