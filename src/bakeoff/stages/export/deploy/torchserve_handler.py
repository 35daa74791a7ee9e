"""TorchServe handler for a bakeoff TorchScript model: JSON nested lists in, JSON nested lists out.

This file is copied into the .mar and runs inside TorchServe, so it imports nothing from bakeoff and
needs no `ts` package: TorchServe calls the module-level `handle(data, context)`, first with
`data=None` to load the model, then with a list of requests (one per client call in a server batch).
TorchServe's own Python may be older than bakeoff's, so the code avoids syntax newer than 3.8.
"""

from __future__ import annotations

import json
import os
from typing import Any

SIGNATURE_FILE = "bakeoff_signature.json"

_state: dict[str, Any] = {}


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[Any] | None:
    if "model" not in _state:
        _load(context)
    if not data:
        return None
    return _infer([_decode(request) for request in data])


def _load(context: Any) -> None:
    import torch

    model_dir = context.system_properties["model_dir"]
    serialized = context.manifest["model"]["serializedFile"]
    gpu = context.system_properties.get("gpu_id")
    device = torch.device(f"cuda:{gpu}" if gpu is not None and torch.cuda.is_available() else "cpu")
    model = torch.jit.load(os.path.join(model_dir, serialized), map_location=device)
    model.eval()
    signature_path = os.path.join(model_dir, SIGNATURE_FILE)
    signature: dict[str, Any] = {}
    if os.path.exists(signature_path):
        with open(signature_path, encoding="utf-8") as f:
            signature = json.load(f)
    _state.update(model=model, device=device, signature=signature)


def _decode(request: dict[str, Any]) -> Any:
    # TorchServe has already parsed application/json bodies; other content types arrive as bytes.
    body = request.get("data", request.get("body"))
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if isinstance(body, str):
        body = json.loads(body)
    if isinstance(body, dict) and "instances" in body:
        body = body["instances"]
    return body


def _infer(bodies: list[Any]) -> list[Any]:
    import torch

    signature = _state["signature"]
    dtype = getattr(torch, signature.get("dtype", "float32"))
    tensors = [torch.as_tensor(body, dtype=dtype) for body in bodies]
    single = [_is_single(t, signature.get("shape")) for t in tensors]
    batch = torch.cat([t.unsqueeze(0) if single[i] else t for i, t in enumerate(tensors)])
    with torch.inference_mode():
        outputs = _state["model"](batch.to(_state["device"]))
    return _split(outputs, [1 if single[i] else len(t) for i, t in enumerate(tensors)], single)


def _is_single(tensor: Any, shape: list[int] | None) -> bool:
    # Without a signature every body is taken as a batch, the unambiguous reading.
    if shape is None:
        return False
    if tensor.dim() in (len(shape), len(shape) + 1):
        return bool(tensor.dim() == len(shape))
    raise ValueError(
        f"request of shape {list(tensor.shape)} fits neither one sample of shape {shape} nor a batch: "
        "send a nested JSON list of that shape, or a list of such samples"
    )


def _split(outputs: Any, sizes: list[int], single: list[bool]) -> list[Any]:
    import torch

    heads = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    parts = [head.detach().cpu().split(sizes) for head in heads]
    answers = []
    for i, one in enumerate(single):
        per_head = [part[i][0].tolist() if one else part[i].tolist() for part in parts]
        answers.append(per_head[0] if len(heads) == 1 else per_head)
    return answers
