"""Torch side of a parity check: every node's output in inference mode, then loss and gradients of
one training step, all returned in canonical (channels-last) layout."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bakeoff.frameworks import LayerMap
from bakeoff.frameworks.torch.build import build
from bakeoff.frameworks.torch.weights import load_weights, read_from
from bakeoff.spec.graph import Graph


def configure(threads: int) -> dict[str, Any]:
    """Same threads as every other framework (fairness rule 4), fp32 with TF32 off (rule 5)."""
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable only before the first parallel work
        torch.set_num_interop_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    _load_optimizers()
    return {
        "torch": torch.__version__,
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        "tf32": False,
    }


@functools.cache
def _load_optimizers() -> None:
    # The first torch.optim optimizer a process builds imports torch._dynamo (~2.5 s on 2 cores).
    # Paying that once, in whichever untimed job comes first (parity runs beside the TensorFlow
    # worker's start-up), keeps it out of the wall time of the timed stages that follow.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def to_torch_input(array: np.ndarray, fresh_nchw: bool = True) -> torch.Tensor:
    if array.dtype.kind in "iu":
        return torch.from_numpy(np.ascontiguousarray(array)).long()
    if array.ndim != 4:
        return torch.from_numpy(np.ascontiguousarray(array))
    if fresh_nchw:
        # A fresh NCHW copy: a permuted view of a one-channel batch counts as contiguous in both
        # layouts, and torch then runs the convs channels-last, where a user's x.view(n, -1) fails.
        return torch.from_numpy(array.transpose(0, 3, 1, 2).copy())
    # Training keeps the permuted view its convergence checks were measured with: with the fresh copy
    # lenet's torch-compile drifts from its eager run by 1.8e-3 within the fp32 horizon (0.0 with this).
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).contiguous()


def to_canonical(tensor: torch.Tensor, flat_image: tuple[int, ...] | None = None) -> np.ndarray:
    array = tensor.detach().cpu().numpy()
    if array.ndim == 4:
        return array.transpose(0, 2, 3, 1)
    if flat_image:
        h, w, c = flat_image
        return array.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(array), -1)
    return array


def loss_fn(output: torch.Tensor, target: torch.Tensor, loss: str, probabilities: bool) -> torch.Tensor:
    if loss == "mse":
        return F.mse_loss(output, target)
    if probabilities:  # the model ends in softmax: the loss takes probabilities, as Keras' from_logits=False
        return F.nll_loss(torch.log(output.clamp_min(1e-7)), target.long())
    return F.cross_entropy(output, target.long())


def without_dropout(model: nn.Module) -> None:
    # Dropout draws differ between frameworks; gradients are compared with it off, batch norm still
    # in training mode.
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()


def collect(
    graph: Graph,
    weights: dict[str, dict[str, np.ndarray]],
    inputs: list[np.ndarray],
    target: np.ndarray,
    threads: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    meta = configure(threads)
    model = build(graph)
    load_weights(model, graph, weights)
    xs = [to_torch_input(x) for x in inputs]
    model.eval()
    with torch.no_grad():
        values = model.forward_all(*xs)
    arrays = {f"act/{n.name}": to_canonical(values[n.name], n.flat_image) for n in graph.nodes}

    model.train()
    without_dropout(model)
    model.zero_grad()
    output = model(*xs)
    loss = loss_fn(output, torch.from_numpy(target), graph.spec.task.loss_name, graph.ends_in_softmax)
    loss.backward()
    arrays["loss"] = np.array(loss.item(), dtype=np.float64)
    for node in graph.nodes:
        if node.name in weights:
            for key, grad in read_from(model.layers[node.name], LayerMap.of(node), grad=True).items():
                arrays[f"grad/{node.name}/{key}"] = grad
    meta["params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return arrays, meta
