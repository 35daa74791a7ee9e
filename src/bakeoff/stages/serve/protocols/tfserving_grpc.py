"""TF Serving's gRPC PredictionService (protos from `tensorflow-serving-api`, installed --no-deps). An
Endpoint whose version is 'label:NAME' addresses a version label."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bakeoff.stages.serve.protocols import CodecError
from bakeoff.stages.serve.protocols.tensor_proto import from_proto, to_proto
from bakeoff.stages.serve.servers.base import Endpoint

# TF Serving's protos import TensorFlow's: keep its C++ start-up chatter out of bakeoff's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


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


class TfServingGrpcClient:
    def __init__(self, endpoint: Endpoint, timeout_s: float) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._aio: Any = None
        self._stub: Any = None
        self._cache: tuple[int, Any] | None = None

    def _request(self, inputs: dict[str, np.ndarray]) -> Any:
        # The load generator sends the same arrays again and again: encode them once.
        key = id(inputs)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, predict_request(self.endpoint, inputs))
        return self._cache[1]

    async def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        if self._aio is None:
            self._aio = grpc.aio.insecure_channel(self.endpoint.address, options=OPTIONS)
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._aio)
        try:
            reply = await self._stub.Predict(self._request(inputs), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise CodecError(exc.code().name, exc.details() or "") from None
        return first_output(reply)

    def infer_sync(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        with grpc.insecure_channel(self.endpoint.address, options=OPTIONS) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            try:
                reply = stub.Predict(predict_request(self.endpoint, inputs), timeout=self.timeout_s)
            except grpc.RpcError as exc:
                raise CodecError(exc.code().name, exc.details() or "") from None
        return first_output(reply)

    async def close(self) -> None:
        if self._aio is not None:
            await self._aio.close()
            self._aio = None


class TfServingGrpcCodec:
    protocol = "tfserving-grpc"
    transport = "grpc"

    def client(self, endpoint: Endpoint, timeout_s: float) -> TfServingGrpcClient:
        return TfServingGrpcClient(endpoint, timeout_s)


codec = TfServingGrpcCodec()
