"""bakeoff's TF Serving API server, driven by clients others wrote: TF Serving's own gRPC stubs (with
TensorFlow's make_tensor_proto) and plain `requests`; answers checked against TensorFlow running the same
SavedModel in this process. One server for the module (simplenet from the session's quick run), stopped by
process group at the end with nothing left."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bakeoff.stages.export.deploy.tensors import TensorSpec
from bakeoff.stages.serve.servers.base import RunningServer, ServeModel

pytestmark = pytest.mark.slow

X = np.random.default_rng(0).random((5, 784), dtype=np.float32)


@pytest.fixture(scope="module")
def server(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from bakeoff.stages.serve import OWN_TFSERVING
    from bakeoff.stages.serve.servers.tfserving import launcher

    model = ServeModel(
        name="simplenet",
        artifacts=exported / "artifacts",
        inputs=[TensorSpec("x", "float32", (784,))],
        outputs=[TensorSpec("output_0", "float32", (10,))],
        workdir=tmp_path_factory.mktemp("tfs"),
        batching=True,
        max_batch_size=32,
        options={
            "versions": [1, 2],
            "labels": {"stable": 1, "canary": 2},
            "max_queue": 24,
            "max_body": 1 << 20,
        },
    )
    running = launcher.start(model)
    assert running.implementation == OWN_TFSERVING  # no tensorflow_model_server on these machines
    pgid = running.pid
    yield running
    running.stop()
    from bakeoff.stages.serve.stage import processes_left

    assert processes_left(pgid) == [], "the server left processes behind"


@pytest.fixture(scope="module")
def expected(exported: Path) -> np.ndarray:
    import tensorflow as tf

    fn = tf.saved_model.load(str(exported / "artifacts" / "keras-savedmodel" / "saved_model")).signatures[
        "serving_default"
    ]
    return np.asarray(fn(x=tf.constant(X))["output_0"])


def rest(server: RunningServer) -> str:
    return server.endpoint("tfserving-rest").address


def test_rest_row_and_columnar_answers_match_tensorflow_in_process(
    server: RunningServer, expected: np.ndarray
) -> None:
    import requests

    base = f"{rest(server)}/v1/models/simplenet"
    row = requests.post(f"{base}:predict", json={"instances": X.tolist()}, timeout=30)
    assert row.status_code == 200, row.text
    np.testing.assert_allclose(np.asarray(row.json()["predictions"]), expected, rtol=1e-5, atol=1e-5)
    col = requests.post(f"{base}/versions/1:predict", json={"inputs": {"x": X.tolist()}}, timeout=30)
    np.testing.assert_allclose(np.asarray(col.json()["outputs"]), expected, rtol=1e-5, atol=1e-5)
    status = requests.get(base, timeout=10).json()
    assert [v["version"] for v in status["model_version_status"]] == ["1", "2"]
    meta = requests.get(f"{base}/metadata", timeout=10).json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["x"]["dtype"] == "DT_FLOAT"


def test_tf_serving_grpc_stubs_predict_versions_and_labels(
    server: RunningServer, expected: np.ndarray
) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(server.endpoint("tfserving-grpc").address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def predict(**spec: Any) -> Any:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = spec.pop("name", "simplenet")
        if "version" in spec:
            request.model_spec.version.value = spec["version"]
        if "label" in spec:
            request.model_spec.version_label = spec["label"]
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(spec.get("x", X)))
        return stub.Predict(request, timeout=30)

    for kwargs in ({}, {"version": 1}, {"label": "canary"}):
        reply = predict(**kwargs)
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["output_0"]), expected, rtol=1e-5, atol=1e-5)
    assert predict(label="canary").model_spec.version.value == 2
    with pytest.raises(grpc.RpcError) as missing:
        predict(name="nope")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as shape:
        predict(x=np.zeros((2, 783), np.float32))
    assert shape.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "784" in (shape.value.details() or "")
    channel.close()


def test_bad_inputs_get_4xx_with_an_error_message(server: RunningServer) -> None:
    from bakeoff.stages.serve.stage import bad_input_matrix

    matrix = bad_input_matrix(server, {"x": X[:1]})
    statuses = {k: v["status"] for k, v in matrix.items() if k != "protocol"}
    assert statuses == {
        "malformed_json": 400,
        "wrong_shape": 400,
        "wrong_dtype": 400,
        "oversized": 413,
        "unknown_model": 404,
    }
    assert all(v["message"] for k, v in matrix.items() if k != "protocol")
    import requests

    for method, path in (
        ("GET", "/nowhere"),
        ("POST", "/v1/models/simplenet:classify"),
        ("GET", "/v1/models/"),
    ):
        r = requests.request(method, rest(server) + path, timeout=10)
        assert 400 <= r.status_code < 500 and r.json()["error"], (path, r.status_code, r.text)


def test_overload_with_malformed_traffic_refuses_with_429_never_5xx_and_loses_nothing(
    server: RunningServer,
) -> None:
    """200 clients at once against a queue of 24, a quarter of them sending broken JSON: every request gets
    an answer, only 200 / 400 / 429, and the server counted as answered exactly the 200s clients got."""
    from bakeoff.stages.serve.stage import version_counts

    address = rest(server)
    good = json.dumps({"instances": X[:1].tolist()}).encode()
    bad = good[: len(good) // 2]
    before = sum(version_counts(server.extra["metrics_url"]).values())
    statuses: Counter[int | str] = Counter()

    async def one(body: bytes) -> None:
        host, port = address.removeprefix("http://").split(":")
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                b"POST /v1/models/simplenet:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readline(), 30)
            statuses[int(head.split()[1])] += 1
            await reader.read()
            writer.close()
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            statuses[type(exc).__name__] += 1

    async def flood() -> None:
        await asyncio.gather(*(one(bad if i % 4 == 0 else good) for i in range(200)))

    asyncio.run(flood())
    after = sum(version_counts(server.extra["metrics_url"]).values())
    assert set(statuses) <= {200, 400, 429}, statuses
    assert sum(statuses.values()) == 200
    assert statuses[400] == 50 and statuses[429] > 0, statuses
    assert after - before == statuses[200]


def test_metrics_endpoint_is_prometheus_text(server: RunningServer) -> None:
    import requests

    text = requests.get(server.extra["metrics_url"], timeout=10).text
    assert "bakeoff_tfserving_requests_total{" in text and "bakeoff_tfserving_batch_rows_bucket" in text


def test_labels_move_and_canary_split_is_measured(server: RunningServer) -> None:
    from bakeoff.stages.serve.stage import tfserving_features

    features = tfserving_features(server, {"x": X[:1]}, canary_share=0.25, n=80)
    assert "error" not in features, features
    canary = features["canary"]
    assert canary["served_share"] == pytest.approx(canary["sent_share"], abs=1e-9)
    assert features["switch"] == {"status": 200, "canary_now_serves": "1"}


def test_load_generator_drives_the_server_and_outruns_it(server: RunningServer) -> None:
    from bakeoff.stages.serve import load
    from bakeoff.stages.serve.protocols import codec

    endpoint = server.endpoint("tfserving-rest")
    target = load.HttpTarget.of(endpoint.address, codec("tfserving-rest").encode(endpoint, {"x": X[:1]}))
    closed = load.closed_loop(target, 8, 1.0)
    assert closed.ok > 0 and closed.failed == 0
    ceiling, _ = load.ceiling(duration=1.0, concurrency=32)
    assert ceiling > 2 * closed.achieved_rps, (ceiling, closed.achieved_rps)
    opened = load.open_loop(target, 50, 1.0, arrival="poisson")
    assert opened.sent > 20 and opened.ok == opened.sent and opened.percentile(99) < 5.0


def test_concurrent_stop_drains_and_leaves_nothing(exported: Path, tmp_path: Path) -> None:
    """Requests in flight when SIGTERM arrives are answered (a no-op model keeps this one quick)."""
    import requests

    from bakeoff.stages.serve.servers.tfserving import launcher
    from bakeoff.stages.serve.stage import processes_left

    model = ServeModel(
        name="m",
        artifacts=exported / "artifacts",
        inputs=[TensorSpec("x", "float32", (4,))],
        outputs=[TensorSpec("output_0", "float32", (2,))],
        workdir=tmp_path,
        options={"noop": True, "grpc": False},
    )
    running = launcher.start(model)
    pgid = running.pid
    answers: list[int] = []

    def client() -> None:
        for _ in range(20):
            try:
                r = requests.post(
                    f"{running.endpoints[0].address}/v1/models/m:predict", json={"instances": [[0, 1, 2, 3]]}
                )
                answers.append(r.status_code)
            except requests.ConnectionError:
                return  # refused after the listener closed: never accepted, so not lost

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    running.stop()
    for t in threads:
        t.join(10)
    assert set(answers) <= {200}
    assert processes_left(pgid) == []
