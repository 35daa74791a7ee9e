"""What each deployment target runs and ships: the runtimes that serve it, the artifacts each side ships
to it and what this machine can and cannot stand in for; and how much each goal weighs the verdict's
dimensions.
"""

from __future__ import annotations

from typing import Any

# Each framework's own inference paths. On a server the framework choice decides which of these you
# run; ONNX Runtime runs either exporter's graph, so it compares exporters, not frameworks.
NATIVE_RUNTIMES = (
    "torch-eager",
    "torch-compile",
    "exported-program",
    "torchscript",
    "torch-eager-cuda",
    "torch-compile-cuda",
    "tf-savedmodel",
    "tf-xla",
    "litert",
)
# Which runtimes serve each deployment target. Mobile, edge and the browser answer one request at a
# time (batch 1); servers batch (the largest batch measured).
TARGET_RUNTIMES = {
    "cloud": NATIVE_RUNTIMES,
    "containers": NATIVE_RUNTIMES,
    "mobile": ("litert", "onnxruntime"),
    "edge": ("litert", "onnxruntime"),
    "browser": ("onnxruntime",),
}
SERVER_TARGETS = ("cloud", "containers")
SIDES = ("PyTorch", "TensorFlow")


def fp32(case: str) -> bool:
    """Whether an inference case (runtime/artifact) runs an fp32 artifact (or a twin)."""
    from bakeoff.stages.export.artifacts import ARTIFACTS

    artifact = ARTIFACTS.get(case.split("/")[-1])
    return artifact is None or artifact.fp32


def runnable(records: list[dict[str, Any]], device: str) -> dict[str, dict[str, Any]]:
    """The metrics, by case, of the inference records that ran ok on `device` and passed the accuracy
    gate: what `contenders` chooses from."""
    return {
        r["case"]: r["metrics"]
        for r in records
        if r["status"] == "ok"
        and r["case"] != "summary"
        and r["metrics"].get("gate") != "fail"
        and r["metrics"].get("device", "cpu") == device
    }


def contenders(done: dict[str, dict[str, Any]], deploy: str) -> tuple[int, dict[str, str | None]] | None:
    """What the verdict's inference dimension compares for `deploy`, among `done` (`runnable` on one
    device): the batch size,
    and each side's case with the lowest median latency at it (None for a side with none). None when
    no case of the target's runtimes ran. A server runs the model as trained: fp32 on both sides
    (fairness rule 5)."""
    from bakeoff.report.digest import family

    paths = {case: m for case, m in done.items() if case.split("/")[0] in TARGET_RUNTIMES[deploy]}
    if deploy in SERVER_TARGETS:
        paths = {case: m for case, m in paths.items() if fp32(case)}
    sizes = sorted({int(b) for m in paths.values() for b in m.get("batches", {})})
    if not sizes:
        return None
    batch = sizes[-1] if deploy in SERVER_TARGETS else sizes[0]
    have = {case: m for case, m in paths.items() if str(batch) in m["batches"]}
    best: dict[str, str | None] = {}
    for side in SIDES:
        mine = [case for case in have if family(case) == side]
        best[side] = min(mine, key=lambda c: have[c]["batches"][str(batch)]["stats"]["median"], default=None)
    return batch, best


# The fp32 ONNX graph each framework's exporter writes, compared in the same ONNX Runtime.
EXPORTER_CASES = ("onnxruntime/torch-onnx", "onnxruntime/keras-onnx")
# The artifacts each side ships to a target with (the deployment path), best first.
TARGET_ARTIFACTS: dict[str, dict[str, tuple[str, ...]]] = {
    "cloud": {
        "PyTorch": ("torch-torchscript", "torch-pt2", "torch-onnx"),
        "TensorFlow": ("keras-savedmodel", "keras-onnx"),
    },
    "mobile": {
        "PyTorch": ("torch-onnx", "torch-onnx-int8-static", "torch-onnx-int8-dynamic", "torch-pt2"),
        "TensorFlow": ("keras-tflite-fp32", "keras-tflite-int8", "keras-tflite-fp16", "keras-tflite-drq"),
    },
    "browser": {"PyTorch": ("torch-onnx",), "TensorFlow": ("keras-onnx",)},
}
TARGET_ARTIFACTS["containers"] = TARGET_ARTIFACTS["cloud"]
TARGET_ARTIFACTS["edge"] = TARGET_ARTIFACTS["mobile"]
TARGET_NOTES = {
    "mobile": "measured on this machine's CPU, not on a phone; PyTorch's mobile path here is ONNX Runtime "
    "(ExecuTorch is not measured)",
    "edge": "measured on this machine's CPU; PyTorch's edge path here is ONNX Runtime (ExecuTorch is not "
    "measured)",
    "browser": "ONNX Runtime on the CPU stands in for ONNX Runtime Web; TensorFlow.js is not measured",
}
# How much each dimension counts in the overall verdict, per goal (the article's checklist, as weights).
WEIGHTS = {
    "research": {"training": 3, "inference": 1, "deployment": 1, "debuggability": 2, "serving": 1},
    "production": {"training": 1, "inference": 3, "deployment": 3, "debuggability": 1, "serving": 3},
    # Training spread over workers or GPUs: the distributed stage's scale-out dimension counts most.
    "scale-out": {
        "training": 2,
        "inference": 1,
        "deployment": 1,
        "debuggability": 1,
        "serving": 1,
        "scale-out": 3,
    },
}
