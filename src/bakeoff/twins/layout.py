"""`--input-shape` as a user types it: PyTorch users give images channels-first (1,28,28), Keras users
channels-last (28,28,1). Pairs compare channels-last, so an obvious channels-first image is turned
around, and the user is told which reading was taken."""

from __future__ import annotations

import re

from bakeoff.errors import UsageError

CHANNELS = (1, 3)


def read_input_shape(shape: tuple[int, ...]) -> tuple[tuple[int, ...], str]:
    """The per-sample shape channels-last, and a sentence saying how a 3-D shape was read ('' else)."""
    if len(shape) != 3:
        return shape, ""
    typed = ",".join(map(str, shape))
    first, last = shape[0] in CHANNELS, shape[-1] in CHANNELS
    if first and not last:
        c, h, w = shape
        return (h, w, c), (
            f"--input-shape {typed}: read as channels-first (C,H,W) as PyTorch takes it; "
            f"torch gets {c},{h},{w} and Keras {h},{w},{c}"
        )
    c = shape[-1]
    how = (
        "channels-last (H,W,C)"
        if last and not first
        else f"channels-last (H,W,C), its last axis {c} channels"
    )
    return shape, (
        f"--input-shape {typed}: read as {how}; torch gets {c},{shape[0]},{shape[1]} and Keras {typed}"
    )


def parse_shape(text: str) -> tuple[int, ...]:
    """--input-shape: '784', '28,28,1', '28x28x1' or '(28, 28, 1)' -> a tuple of positive integers."""
    parts = re.split(r"[,x]", text.replace(" ", "").strip("()[]"))
    shape = tuple(int(p) for p in parts if p.isdigit())
    if len(shape) != len(parts) or any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape {text!r}: expected positive integers like 784 or 28,28,1")
    return shape


def read_input_shapes(texts: list[str]) -> tuple[list[tuple[int, ...]], list[str]]:
    """Shapes as typed, one per input: the shapes channels-last, and how each 3-D one was read."""
    shapes, readings = [], []
    for text in texts:
        shape, reading = read_input_shape(parse_shape(text))
        shapes.append(shape)
        readings += [reading] if reading else []
    return shapes, readings
