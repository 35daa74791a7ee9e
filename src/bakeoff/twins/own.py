"""Parity of the user's own model, whatever hands it over (the CLI's --torch/--keras, or `bakeoff.parity`
with model objects saved to files): a pair is checked as given; one model alone is derived first and
checked against its generated twin."""

from __future__ import annotations

from pathlib import Path

from bakeoff.twins.byo import parse_ref
from bakeoff.twins.derive import Derived, derive
from bakeoff.twins.parity import ParityOptions, ParityResult, check_pair


def derive_one(
    torch_ref: str | None,
    keras_ref: str | None,
    shapes: list[tuple[int, ...]],
    out: Path,
    threads: int | None,
) -> Derived:
    """The spec and twin of the one model given, written to OUT/derived/NAME/."""
    ref, framework = (torch_ref, "torch") if torch_ref else (keras_ref, "keras")
    assert ref is not None
    name = parse_ref(ref, f"--{framework}")[1]
    return derive(ref, framework, shapes, out / "derived" / name, threads)


def check_own(
    torch_ref: str | None,
    keras_ref: str | None,
    shapes: list[tuple[int, ...]],
    options: ParityOptions,
    match_defaults: bool,
    out: Path,
) -> ParityResult:
    """Full tracebacks of the user's code go to OUT/byo-errors/, a derived spec and twin to OUT/derived/."""
    if torch_ref and keras_ref:
        return check_pair(torch_ref, keras_ref, shapes, options, match_defaults, out / "byo-errors")
    derived = derive_one(torch_ref, keras_ref, shapes, out, options.threads)
    pair = derived.pair(shapes, match_defaults)
    result = check_pair(pair.torch, pair.keras, shapes, options, match_defaults, out / "byo-errors")
    result.notes[:0] = derived.notes
    return result
