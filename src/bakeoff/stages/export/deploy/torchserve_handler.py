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
    # Each request of a server batch is judged on its own: a malformed one gets a 400 with the reason,
    # and the well-formed ones beside it are still answered (raising here would fail the whole batch
    # with TorchServe's 503, blaming the server for the client's mistake).
    answers: list[Any] = [None] * len(data)
    good: list[tuple[int, Any, bool]] = []
    for index, request in enumerate(data):
        try:
            tensor = _tensor(_decode(request))
            good.append((index, tensor, _is_single(tensor, _state["signature"].get("shape"))))
        except (ValueError, TypeError, RuntimeError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            if hasattr(context, "set_response_status"):
                context.set_response_status(400, message[:200], index)
            answers[index] = {"error": message}
    if good:
        for (index, _, _), answer in zip(good, _infer([(t, one) for _, t, one in good])):  # noqa: B905 (3.8)
            answers[index] = answer
    return answers


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


def _tensor(body: Any) -> Any:
    import torch

    dtype = getattr(torch, _state["signature"].get("dtype", "float32"))
    return torch.as_tensor(body, dtype=dtype)


def _infer(requests: list[tuple[Any, bool]]) -> list[Any]:
    import torch

    batch = torch.cat([t.unsqueeze(0) if one else t for t, one in requests])
    with torch.inference_mode():
        outputs = _state["model"](batch.to(_state["device"]))
    return _split(outputs, [1 if one else len(t) for t, one in requests], [one for _, one in requests])


def _is_single(tensor: Any, shape: list[int] | None) -> bool:
    # Without a signature every body is taken as a batch, the unambiguous reading.
    if shape is None:
        return False
    dims = list(tensor.shape)
    for single in (True, False):
        sample = dims if single else dims[1:]
        if len(sample) == len(shape) and all(d in (None, -1) or d == n for d, n in zip(shape, sample)):  # noqa: B905
            return single
    raise ValueError(
        f"request of shape {dims} fits neither one sample of shape {shape} nor a batch of them: "
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
