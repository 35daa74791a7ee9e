"""Every artifact checked against the model it was made from: max abs difference of the outputs on the
validation set, top-1 agreement, accuracy, and accuracy relative to fp32 against MLPerf's 99% gate.

`check_outputs` runs in a worker (the verification job here, and each inference case, so a runtime
that computes something else shows up too); `judge` turns its numbers into a verdict in the parent.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.measure.isolation import case_loop
from bakeoff.npz import load_arrays
from bakeoff.runtimes import RUNTIMES, LoadOptions, Predict, load
from bakeoff.stages.export.artifacts import ARTIFACTS, GATE, Artifact, path_of
from bakeoff.stages.export.shared import ExportJob, in_chunks, reference_path
from bakeoff.stages.train.shared import accuracy

# fp32 artifacts may reorder sums (fused kernels, other GEMMs): tf2onnx's tests allow 1e-5, onnx2tf
# and nobuco 1e-4. Relative to the output's scale, since logits can be large.
FP32_ATOL = 1e-4


def check_outputs(predict: Predict, artifact: Artifact, job: ExportJob) -> dict[str, Any]:
    reference = load_arrays(reference_path(job.root, artifact.origin))["outputs"]
    outputs = in_chunks(predict, job.inputs("val", artifact)).reshape(reference.shape)
    labels = job.data["y_val"]
    task = job.graph.spec.task.type
    out: dict[str, Any] = {
        "samples": len(outputs),
        "max_abs_diff": float(np.max(np.abs(outputs.astype(np.float64) - reference))),
        "output_scale": float(np.max(np.abs(reference))),
        "accuracy": accuracy(outputs, labels, task),
        "reference_accuracy": accuracy(reference, labels, task),
    }
    if task == "classification":
        out["top1_agreement"] = float(np.mean(outputs.argmax(-1) == reference.argmax(-1)))
    return out


def judge(artifact: Artifact, v: dict[str, Any]) -> tuple[str, str, str]:
    """(status, gate, message). An fp32 artifact must reproduce its source; a reduced-precision one must
    keep 99% of the fp32 accuracy, and one that does not is flagged (kept, never hidden)."""
    tol = FP32_ATOL * max(1.0, v["output_scale"])
    if artifact.fp32:
        if not v["max_abs_diff"] <= tol:
            return "failed", "fail", f"WRONG OUTPUTS: max abs diff {v['max_abs_diff']:.2e} > {tol:.1e}"
        return "ok", "pass", f"max abs diff {v['max_abs_diff']:.1e}"
    if "top1_agreement" not in v:  # regression: no accuracy to gate on, only the error it adds
        return "ok", "n/a", f"max abs diff {v['max_abs_diff']:.1e} (regression: no accuracy gate)"
    relative = v["accuracy"] / v["reference_accuracy"] if v["reference_accuracy"] > 0 else 0.0
    v["relative_accuracy"] = relative
    summary = f"accuracy {v['accuracy']:.4f} = {100 * relative:.2f}% of fp32"
    if relative < GATE:
        return "ok", "fail", f"FLAGGED: {summary}, under the {100 * GATE:.0f}% gate"
    return "ok", "pass", summary


def load_artifact(job: ExportJob, artifact: Artifact, runtime_name: str) -> Predict:
    runtime = RUNTIMES[runtime_name]
    spec = job.request["spec"]
    return load(runtime, path_of(job.root, artifact), LoadOptions(job.threads, spec))


def onnx_ops(path: Path) -> dict[str, int]:
    """How many nodes of each op type the graph holds: tells two exporters' graphs apart, or not."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(sorted(Counter(node.op_type for node in graph.node).items()))


def collect(request: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The verification job: each artifact run by its own runtime over the validation set."""
    job = ExportJob.from_request(request)

    def run_one(name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        artifact = ARTIFACTS[name]
        checked = check_outputs(load_artifact(job, artifact, artifact.verify_with), artifact, job)
        if artifact.format == "onnx":
            checked["onnx_ops"] = onnx_ops(path_of(job.root, artifact))
        return {}, checked

    return case_loop(request, run_one)
