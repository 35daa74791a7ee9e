"""TF Serving's gRPC PredictionService (protos from `tensorflow-serving-api`, installed --no-deps). An
Endpoint whose version is 'label:NAME' addresses a version label."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bakeoff.stages.serve.protocols import CodecError
from bakeoff.stages.serve.protocols._grpc import GrpcClient
from bakeoff.stages.serve.protocols.tensor_proto import from_proto, to_proto
from bakeoff.stages.serve.servers.base import Endpoint

# TF Serving's protos import TensorFlow's: keep its C++ start-up chatter out of bakeoff's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def predict_request(endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Any:
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = endpoint.model
    request.model_spec.signature_name = "serving_default"
    if endpoint.version:
        if endpoint.version.startswith("label:"):
            request.model_spec.version_label = endpoint.version.removeprefix("label:")
        else:
            request.model_spec.version.value = int(endpoint.version)
    for name, array in inputs.items():
        to_proto(np.asarray(array), request.inputs[name])
    return request


def first_output(reply: Any) -> np.ndarray:
    if not reply.outputs:
        raise CodecError("OK", "the PredictResponse has no outputs")
    return from_proto(reply.outputs[sorted(reply.outputs)[0]])


def _stub(channel: Any) -> Any:
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


class TfServingGrpcCodec:
    protocol = "tfserving-grpc"
    transport = "grpc"

    def client(self, endpoint: Endpoint, timeout_s: float) -> GrpcClient:
        return GrpcClient(
            endpoint, timeout_s, build=predict_request, stub=_stub, method="Predict", read=first_output
        )


codec = TfServingGrpcCodec()
