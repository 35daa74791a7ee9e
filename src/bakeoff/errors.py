"""The one error family the CLI catches: each carries a one-line message and an exit status."""

import re
from collections.abc import Iterable

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def one_line(text: str, limit: int = 400) -> str:
    """A framework's multi-line, colour-coded message as one plain line: Keras wraps a user's error in
    bold escape codes and a list of the call's arguments, which say nothing the user's line does not."""
    kept = []
    for line in ANSI.sub("", text).splitlines():
        if line.strip().startswith("Arguments received by"):
            break
        if line.strip():
            kept.append(line.strip())
    joined = " ".join(kept)
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


class BakeoffError(Exception):
    """A failure bakeoff can explain in one line; `exit_code` 2 means bad usage, 1 a failed check."""

    exit_code = 1


class UsageError(BakeoffError):
    """The user asked for something that cannot be done as asked (bad flag, missing file)."""

    exit_code = 2


def check_choices(option: str, what: str, given: list[str], known: Iterable[str]) -> list[str]:
    """`given` when every name is in `known`; else one line naming the unknown ones and listing all."""
    names = list(known)
    unknown = [g for g in given if g not in names]
    if unknown or not given:
        # A name the user typed is echoed as typed, unless it is empty or holds control characters.
        listed = ", ".join(g if g and g.isprintable() else repr(g) for g in unknown) or "(none given)"
        raise UsageError(f"{option}: unknown {what}(s) {listed}; available: {', '.join(names)}")
    return given


class SpecError(UsageError):
    """A model spec is malformed: bad YAML, unknown layer, shapes that do not fit together."""


class PairError(UsageError):
    """A bring-your-own torch/Keras pair cannot be loaded or its layers cannot be matched; `detail` is
    the full traceback when the user's own code raised."""

    detail = ""


class WorkerError(BakeoffError):
    """A framework worker process failed; the message is the worker's own last word."""


class ParityFailure(BakeoffError):
    """The twins compute different things beyond tolerance."""
