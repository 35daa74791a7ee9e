"""PyTorch exporters: ONNX (dynamo exporter, pinned opset, dynamic batch), ExportedProgram (.pt2) and
TorchScript, all from the trained twin. The twin's own weights are an artifact too (torch-twin)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bakeoff.frameworks.torch.build import build
from bakeoff.frameworks.torch.onnx_import import load_onnx
from bakeoff.frameworks.torch.parity import configure
from bakeoff.frameworks.torch.weights import load_weights
from bakeoff.measure.isolation import case_loop
from bakeoff.runtimes.torch_eager import wrap
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.export.shared import REFERENCE, ExportJob, in_chunks, save_reference, timed_export


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    job = ExportJob.from_request(request)
    configure(job.threads)
    model = build(job.graph)
    load_weights(model, job.graph, job.weights)
    model.eval()
    twin = ARTIFACTS["torch-twin"]
    example = tuple(torch.from_numpy(x) for x in job.inputs("val", twin, 2))
    batch = torch.export.Dim("batch", min=1, max=65536)
    # forward(*inputs): the positional inputs arrive as one tuple, so the shapes nest one level deeper.
    dynamic = (tuple({0: batch} for _ in example),)

    def onnx(path: Path) -> dict[str, Any]:
        torch.onnx.export(
            model,
            example,
            str(path),
            dynamo=True,
            opset_version=request["opset"],
            input_names=[i.name for i in job.graph.inputs],
            output_names=["output"],
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )
        return {"opset": request["opset"]}

    def pt2(path: Path) -> None:
        torch.export.save(torch.export.export(model, example, dynamic_shapes=dynamic), str(path))

    def torchscript(path: Path) -> None:
        # check_trace re-runs the model and compares graphs; verification compares outputs instead.
        torch.jit.trace(model, example, check_trace=False).save(str(path))

    def twin_weights(path: Path) -> None:
        shutil.copy(request["weights"], path)

    def from_keras(path: Path) -> None:
        """Keras -> ONNX -> PyTorch: the runtime converts at load; converting here fails early."""
        shutil.copy(path_of(job.root, ARTIFACTS["keras-onnx"]), path)
        load_onnx(path)

    exporters = {
        "torch-twin": twin_weights,
        "torch-onnx": onnx,
        "torch-pt2": pt2,
        "torch-torchscript": torchscript,
        "keras-onnx-torch": from_keras,
    }

    def run_one(case: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if case == REFERENCE:
            return {}, save_reference(job, "torch", in_chunks(wrap(model), job.inputs("val", twin)))
        return {}, timed_export(job.root, case, exporters[case])

    return case_loop(request, run_one)
