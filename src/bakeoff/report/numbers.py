"""Number formats shared by every table: light enough for `bakeoff runs` to import without the rest."""

from __future__ import annotations

import math


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}"


def sci(x: float | None) -> str:
    # None: a NaN or infinity, which records store as null
    return "n/a" if x is None or math.isnan(x) else f"{x:.2e}"
