"""KServe v2 over gRPC (GRPCInferenceService), with the service protos tritonclient bundles and grpcio; not
tritonclient's [grpc] extra, which pins protobuf below TensorFlow's. Tensors travel as raw_input_contents."""

from __future__ import annotations

from typing import Any

import numpy as np

from bakeoff.stages.serve.protocols import CodecError
from bakeoff.stages.serve.protocols._grpc import GrpcClient
from bakeoff.stages.serve.protocols.kserve import NUMPY, datatype
from bakeoff.stages.serve.servers.base import Endpoint


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


def _stub(channel: Any) -> Any:
    from tritonclient.grpc import service_pb2_grpc

    return service_pb2_grpc.GRPCInferenceServiceStub(channel)


class KServeGrpcCodec:
    protocol = "kserve-v2-grpc"
    transport = "grpc"

    def client(self, endpoint: Endpoint, timeout_s: float) -> GrpcClient:
        return GrpcClient(
            endpoint, timeout_s, build=infer_request, stub=_stub, method="ModelInfer", read=first_output
        )


codec = KServeGrpcCodec()
