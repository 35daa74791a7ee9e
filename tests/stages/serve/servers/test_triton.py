"""Triton Inference Server started by bakeoff on simplenet's ONNX export, driven by NVIDIA's own client
(tritonclient.http): answers match the in-process model, both versions serve and switch, metrics scrape,
bad inputs get answers, and nothing of the process group outlives stop()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests

from bakeoff.stages.export.deploy.tensors import TensorSpec
from bakeoff.stages.serve.servers import triton, triton_env
from tests.stages.serve.servers._bad import bad_input_statuses
from tests.stages.serve.servers.conftest import Exported, available, group_left, mentioning, serve_model

# One xdist group with the other server tests: they share one export of simplenet.
pytestmark = pytest.mark.xdist_group("serve-servers")


def test_config_turns_dynamic_batching_on_and_off(tmp_path: Path) -> None:
    specs = [TensorSpec("x", "float32", (784,))], [TensorSpec("output", "float32", (10,))]
    model = serve_model(Exported(tmp_path, np.zeros(1), np.zeros(1)), tmp_path, batching=False)
    off = triton.config_pbtxt(model, *specs, tmp_path)
    assert "dynamic_batching" not in off and 'backend: "python"' in off
    assert "versions: [ 1, 2 ]" in off and "max_batch_size: 16" in off
    on = triton.config_pbtxt(
        serve_model(Exported(tmp_path, np.zeros(1), np.zeros(1)), tmp_path), *specs, tmp_path
    )
    assert "max_queue_delay_microseconds: 2000" in on


def test_a_missing_env_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(triton_env.ENV_VAR, str(tmp_path / "nothing"))
    reason = triton.launcher.unavailable()
    assert reason is not None and triton_env.SETUP_COMMAND in reason and "nothing" in reason


@pytest.mark.slow
def test_triton_serves_the_export_to_tritonclient(exported: Exported, tmp_path: Path) -> None:
    import tritonclient.http as httpclient

    launcher = available("triton")
    running = launcher.start(serve_model(exported, tmp_path))
    try:
        assert running.implementation.startswith("tritonserver 2.51")
        assert "ONNX Runtime" in running.implementation and running.cold_start_s > 0
        assert running.protocols() == ["kserve-v2-http", "kserve-v2-grpc"]
        client = httpclient.InferenceServerClient(
            running.endpoint("kserve-v2-http").address[len("http://") :]
        )
        assert client.is_model_ready("simplenet")

        def infer(version: str = "") -> tuple[np.ndarray, str]:
            data = httpclient.InferInput("x", list(exported.x.shape), "FP32")
            data.set_data_from_numpy(exported.x)
            result = client.infer("simplenet", [data], model_version=version)
            return result.as_numpy("output"), result.get_response()["model_version"]

        out, version = infer()
        np.testing.assert_allclose(out, exported.reference, atol=1e-4)
        assert version == "2"  # the newest of the served versions answers unversioned requests
        assert infer("1")[1] == "1"
        triton.set_versions(running, ("1",))  # switch: only version 1 is left
        assert infer()[1] == "1"
        metrics = requests.get(running.extra["metrics_url"], timeout=10).text
        assert 'nv_inference_request_success{model="simplenet",version="1"}' in metrics
        http = running.extra["http"]
        statuses = bad_input_statuses(
            lambda m: f"{http}/v2/models/{m}/infer",
            "simplenet",
            lambda a: {
                "inputs": [{"name": "x", "shape": list(a.shape), "datatype": "FP32", "data": a.tolist()}]
            },
            exported.x,
            {},
        )
        print("triton bad inputs:", statuses)
        assert all(400 <= s < 600 for s in statuses.values()), statuses
        assert infer("1")[1] == "1"  # still serving after them
    finally:
        running.stop()
    assert group_left(running.pid) == []
    assert mentioning(str(tmp_path)) == []


@pytest.mark.slow
def test_a_model_that_fails_to_load_stops_the_group_and_says_why(exported: Exported, tmp_path: Path) -> None:
    from dataclasses import replace

    from bakeoff.errors import BakeoffError

    launcher = available("triton")
    broken = replace(serve_model(exported, tmp_path), threads="many")  # model.py's int() fails in Triton
    with pytest.raises(BakeoffError) as caught:
        launcher.start(broken)
    first = str(caught.value).splitlines()[0]
    assert first.startswith("tritonserver exited with code"), first
    assert "many" in str(caught.value)  # the log's tail says why
    assert mentioning(str(tmp_path)) == []
