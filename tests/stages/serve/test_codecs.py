"""The KServe v2 and TF Serving codecs against clients others wrote: tritonclient's own request encoder and
response parser (KServe v2 HTTP, JSON and binary), and TensorFlow's TensorProto helpers (TF Serving gRPC)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bakeoff.stages.serve.protocols import CodecError, codec
from bakeoff.stages.serve.servers.base import Endpoint

KSERVE = Endpoint("kserve-v2-http", "http://127.0.0.1:1", "simplenet", "3")
X = np.arange(12, dtype=np.float32).reshape(3, 4) / 7


def _split(body: bytes, header_length: int | None) -> tuple[dict[str, object], bytes]:
    n = header_length if header_length is not None else len(body)
    return json.loads(body[:n]), body[n:]


def test_kserve_binary_request_matches_tritonclients_encoding() -> None:
    import tritonclient.http as th

    inp = th.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=True)
    theirs, their_len = th.InferenceServerClient.generate_request_body([inp])
    ours = codec("kserve-v2-http", "binary").encode(KSERVE, {"x": X})
    assert ours.path == "/v2/models/simplenet/versions/3/infer"
    head, tail = _split(ours.body, int(ours.headers["Inference-Header-Content-Length"]))
    their_head, their_tail = _split(theirs, their_len)
    assert head["inputs"] == their_head["inputs"]  # type: ignore[index]
    assert tail == their_tail


def test_kserve_json_request_matches_tritonclients_encoding() -> None:
    import tritonclient.http as th

    inp = th.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=False)
    theirs, _ = th.InferenceServerClient.generate_request_body([inp])
    ours = codec("kserve-v2-http").encode(KSERVE, {"x": X})
    mine, other = json.loads(ours.body)["inputs"][0], json.loads(theirs)["inputs"][0]
    assert {k: mine[k] for k in ("name", "shape", "datatype")} == {
        k: other[k] for k in ("name", "shape", "datatype")
    }
    np.testing.assert_allclose(mine["data"], other["data"], rtol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_kserve_responses_decode_as_tritonclient_reads_them(binary: bool) -> None:
    import tritonclient.http as th

    out = (X * 3).astype(np.float32)
    entry: dict[str, object] = {"name": "output_0", "datatype": "FP32", "shape": list(out.shape)}
    if binary:
        entry["parameters"] = {"binary_data_size": out.nbytes}
    else:
        entry["data"] = out.ravel().tolist()
    head = json.dumps({"model_name": "simplenet", "outputs": [entry]}).encode()
    body = head + (out.tobytes() if binary else b"")
    length = len(head) if binary else None
    theirs = th.InferenceServerClient.parse_response_body(body, header_length=length).as_numpy("output_0")
    headers = {"inference-header-content-length": str(length)} if binary else {}
    ours = codec("kserve-v2-http").decode(200, body, headers)
    np.testing.assert_array_equal(ours, theirs)


def test_error_bodies_become_codec_errors_with_the_servers_message() -> None:
    with pytest.raises(CodecError) as kserve:
        codec("kserve-v2-http").decode(400, b'{"error":"unexpected shape for input x"}')
    assert kserve.value.status == 400 and kserve.value.message == "unexpected shape for input x"
    with pytest.raises(CodecError) as tfs:
        codec("tfserving-rest").decode(404, b'{"error": "Servable not found"}')
    assert tfs.value.status == 404 and "Servable" in tfs.value.message


def test_tfserving_rest_formats_and_label_paths() -> None:
    e = Endpoint("tfserving-rest", "http://127.0.0.1:1", "m", "label:canary")
    row = codec("tfserving-rest", "row").encode(e, {"x": X})
    assert row.path == "/v1/models/m/labels/canary:predict"
    assert np.allclose(json.loads(row.body)["instances"], X)
    col = codec("tfserving-rest", "columnar").encode(
        Endpoint("tfserving-rest", "", "m", "2"), {"a": X, "b": X}
    )
    assert col.path == "/v1/models/m/versions/2:predict" and set(json.loads(col.body)["inputs"]) == {"a", "b"}
    got = codec("tfserving-rest").decode(200, json.dumps({"predictions": X.tolist()}).encode())
    np.testing.assert_allclose(got, X, rtol=1e-6)


@pytest.mark.slow
def test_tensor_protos_round_trip_with_tensorflows_own_helpers() -> None:
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.framework import tensor_pb2

    from bakeoff.stages.serve.protocols.tensor_proto import from_proto, to_proto

    for array in (X, np.arange(6, dtype=np.int64).reshape(2, 3), np.array([[True, False]])):
        ours = to_proto(array, tensor_pb2.TensorProto())
        np.testing.assert_array_equal(tf.make_ndarray(ours), array)
        np.testing.assert_array_equal(from_proto(tf.make_tensor_proto(array)), array)
