"""Small torch modules for spec layers that torch.nn has no single module for."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class GlobalAvgPool(nn.Module):
    """Mean over the spatial axes of NCHW (dims 2, 3) or the steps of (N, T, F) (dim 1)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dims)


class SameAvgPool2d(nn.Module):
    """TensorFlow's 'same' average pooling with asymmetric padding: padded cells are not counted.

    nn.AvgPool2d(count_include_pad=False) only pads symmetrically, so pad explicitly and divide by
    the pooled mask of real cells instead.
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int, int, int]):
        super().__init__()
        self.kernel, self.stride, self.pad = kernel, stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:1, :1])
        summed = F.avg_pool2d(F.pad(x, self.pad), self.kernel, self.stride)
        counted = F.avg_pool2d(F.pad(ones, self.pad), self.kernel, self.stride)
        return summed / counted


class PositionEmbedding(nn.Module):
    def __init__(self, max_length: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_length, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]


class Recurrent(nn.Module):
    """nn.LSTM / nn.GRU returning the whole sequence or the last step, as Keras' return_sequences."""

    def __init__(self, rnn: nn.LSTM | nn.GRU, return_sequences: bool) -> None:
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences
        if isinstance(rnn, nn.LSTM):
            # Keras' LSTM has one bias where torch adds b_ih + b_hh: training both would move the
            # bias twice as fast under Adam. The canonical bias lives in b_ih; b_hh stays zero.
            rnn.bias_hh_l0.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out if self.return_sequences else out[:, -1]


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]
