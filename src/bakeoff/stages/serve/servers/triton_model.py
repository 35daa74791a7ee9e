"""Triton python-backend model that bakeoff copies into its model repository as `<version>/model.py`:
runs the exported ONNX file with ONNX Runtime on every batch Triton hands it.

It runs inside Triton's backend stub, an embedded interpreter of the Triton env: it imports nothing from
bakeoff. Its parameters (config.pbtxt) name the ONNX file, the intra-op threads and the env's
site-packages, which it puts on sys.path itself (the stub does not read PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        site = params.get("site_packages")
        if site and site not in sys.path:
            sys.path.insert(0, site)
        import onnxruntime as ort
        import triton_python_backend_utils as pb_utils

        self.pb = pb_utils
        path = os.path.join(args["model_repository"], args["model_version"], params["onnx_file"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("threads", "1"))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]
        # noop: answer zeros without running the model, the server stack's own ceiling.
        self.noop = params.get("noop") == "1"
        self.output_shapes = [[int(d) for d in o["dims"]] for o in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        """One ONNX Runtime call for all the requests Triton batched together, split back per request."""
        import numpy as np

        try:
            feeds = [
                [self.pb.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs]
                for r in requests
            ]
            sizes = [len(f[0]) for f in feeds]
            joined = {
                name: np.concatenate([f[i] for f in feeds]) if len(feeds) > 1 else feeds[0][i]
                for i, name in enumerate(self.inputs)
            }
            if self.noop:
                rows = sum(sizes)
                results = [np.zeros((rows, *shape), np.float32) for shape in self.output_shapes]
            else:
                results = self.session.run(self.outputs, joined)
        except Exception as exc:
            error = self.pb.TritonError(f"{type(exc).__name__}: {exc}")
            return [self.pb.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        bounds = np.cumsum([0, *sizes])
        return [
            self.pb.InferenceResponse(
                output_tensors=[
                    self.pb.Tensor(name, np.ascontiguousarray(out[bounds[k] : bounds[k + 1]]))
                    for name, out in zip(self.outputs, results, strict=True)
                ]
            )
            for k in range(len(requests))
        ]
