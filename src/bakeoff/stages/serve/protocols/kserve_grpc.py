"""KServe v2 over gRPC (GRPCInferenceService), with the service protos tritonclient bundles and grpcio; not
tritonclient's [grpc] extra, which pins protobuf below TensorFlow's. Tensors travel as raw_input_contents."""

from __future__ import annotations

from typing import Any

import numpy as np

from bakeoff.stages.serve.protocols import CodecError
from bakeoff.stages.serve.protocols.kserve import NUMPY, datatype
from bakeoff.stages.serve.servers.base import Endpoint

OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


def infer_request(endpoint: Endpoint, inputs: dict[str, np.ndarray]) -> Any:
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name=endpoint.model, model_version=endpoint.version or "")
    for name, array in inputs.items():
        tensor = request.inputs.add()
        tensor.name = name
        tensor.datatype = datatype(array)
        tensor.shape.extend(array.shape)
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    return request


def first_output(reply: Any) -> np.ndarray:
    if not reply.outputs:
        raise CodecError("OK", "the ModelInferResponse has no outputs")
    out = reply.outputs[0]
    dtype = NUMPY.get(out.datatype)
    if dtype is None:
        raise CodecError("OK", f"output datatype {out.datatype!r} is not a KServe v2 datatype")
    shape = list(out.shape)
    if reply.raw_output_contents:
        return np.frombuffer(reply.raw_output_contents[0], dtype=dtype).reshape(shape)
    contents = out.contents
    for field in ("fp32_contents", "fp64_contents", "int64_contents", "int_contents", "uint_contents"):
        values = list(getattr(contents, field))
        if values:
            return np.asarray(values, dtype=dtype).reshape(shape)
    raise CodecError("OK", "the output carries no values")


class KServeGrpcClient:
    def __init__(self, endpoint: Endpoint, timeout_s: float) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._aio: Any = None
        self._stub: Any = None
        self._cache: tuple[int, Any] | None = None

    def _request(self, inputs: dict[str, np.ndarray]) -> Any:
        key = id(inputs)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, infer_request(self.endpoint, inputs))
        return self._cache[1]

    async def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import grpc
        from tritonclient.grpc import service_pb2_grpc

        if self._aio is None:
            self._aio = grpc.aio.insecure_channel(self.endpoint.address, options=OPTIONS)
            self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._aio)
        try:
            reply = await self._stub.ModelInfer(self._request(inputs), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise CodecError(exc.code().name, exc.details() or "") from None
        return first_output(reply)

    def infer_sync(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import grpc
        from tritonclient.grpc import service_pb2_grpc

        with grpc.insecure_channel(self.endpoint.address, options=OPTIONS) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            try:
                reply = stub.ModelInfer(infer_request(self.endpoint, inputs), timeout=self.timeout_s)
            except grpc.RpcError as exc:
                raise CodecError(exc.code().name, exc.details() or "") from None
        return first_output(reply)

    async def close(self) -> None:
        if self._aio is not None:
            await self._aio.close()
            self._aio = None


class KServeGrpcCodec:
    protocol = "kserve-v2-grpc"
    transport = "grpc"

    def client(self, endpoint: Endpoint, timeout_s: float) -> KServeGrpcClient:
        return KServeGrpcClient(endpoint, timeout_s)


codec = KServeGrpcCodec()
