"""ONNX -> int8 with ONNX Runtime's quantization tools, dynamic and static (QDQ, calibrated on
training samples). Runs in the 'native' worker, which imports neither framework."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from bakeoff.measure.isolation import case_loop
from bakeoff.runtimes.onnxruntime import session
from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
from bakeoff.stages.export.shared import ExportJob, timed_export


class _Samples(CalibrationDataReader):
    """Feeds calibration samples in batches of 32, in the source model's layout and input names."""

    def __init__(self, names: list[str], xs: list[np.ndarray]) -> None:
        self._batches = iter(
            [dict(zip(names, [x[i : i + 32] for x in xs], strict=True)) for i in range(0, len(xs[0]), 32)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(job: ExportJob, name: str, path: Path) -> dict[str, Any]:
    artifact = ARTIFACTS[name]
    source = path_of(job.root, ARTIFACTS[artifact.source])
    if not source.exists():
        raise RuntimeError(f"needs the {artifact.source} artifact, which was not made")
    with tempfile.TemporaryDirectory() as tmp:
        # Shape inference and graph clean-up first, as ONNX Runtime's quantization guide asks.
        prepared = Path(tmp, "prepared.onnx")
        quant_pre_process(str(source), str(prepared))
        if name.endswith("dynamic"):
            quantize_dynamic(prepared, path, weight_type=QuantType.QInt8)
        else:
            names = [i.name for i in session(source, job.threads).get_inputs()]
            samples = job.inputs("cal", artifact)
            quantize_static(prepared, path, _Samples(names, samples), per_channel=True)
    return {"calibration_samples": 0 if name.endswith("dynamic") else len(job.data["x_cal/0"])}


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    job = ExportJob.from_request(request)
    return case_loop(
        request, lambda case: ({}, timed_export(job.root, case, lambda path: quantize(job, case, path)))
    )
