"""Checks and staging shared by the deploy writers: safe names, no overwrites, no half-written layouts."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bakeoff.errors import UsageError

# The three servers use the model name as a directory and as a URL path segment.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"model name {name!r} is not usable by model servers: use letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )


def refuse_existing(path: Path) -> None:
    if path.exists():
        raise UsageError(f"{path} already exists: remove it or choose another output folder, name or version")


@contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """Yield a scratch path beside `dest`, renamed to `dest` only if the block succeeds.

    A server watching the output folder must never see a half-copied model, and a failed write
    must not leave a folder that blocks the retry.
    """
    refuse_existing(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield scratch
        scratch.rename(dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
