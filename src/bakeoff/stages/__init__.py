"""The stages of `bakeoff run`, in order. A new stage is one module with a `run(ctx)` and one line here."""

from __future__ import annotations

from collections.abc import Callable

from bakeoff.stages import parity
from bakeoff.stages.context import RunContext

STAGES: dict[str, Callable[[RunContext], None]] = {
    "parity": parity.run,
}
