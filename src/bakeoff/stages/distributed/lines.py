"""How many lines each launcher's way of spreading training adds or changes in a minimal one-process
training script: the scripts in `examples/`, diffed line by line (blank lines and comments aside). The
count does not include bakeoff's Keras 3 workarounds (`strategy_fixes`), which a user of Keras 3 with
MultiWorkerMirroredStrategy would need too: `lines_changed` says so beside the number."""

from __future__ import annotations

import difflib
from pathlib import Path

EXAMPLES = Path(__file__).parent / "examples"
# launcher -> (one-process script, distributed script)
SCRIPTS = {
    "torchrun": ("torch_single.py", "torch_ddp.py"),
    "mwms": ("keras_single.py", "keras_mwms.py"),
    "mirrored": ("keras_single.py", "keras_mirrored.py"),
    "accelerate": ("torch_single.py", "torch_accelerate.py"),
    "lightning": ("torch_single.py", "torch_lightning.py"),
    "ray-torch": ("torch_single.py", "torch_ray.py"),
    "ray-tf": ("keras_single.py", "keras_ray.py"),
}


def _code(name: str) -> list[str]:
    lines = (EXAMPLES / name).read_text().splitlines()
    return [ln.rstrip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def lines_changed(launcher: str) -> int:
    """Lines added or changed (a changed line counts once) from the one-process script."""
    single, spread = SCRIPTS[launcher]
    matcher = difflib.SequenceMatcher(a=_code(single), b=_code(spread), autojunk=False)
    return sum(j2 - j1 for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in ("replace", "insert"))
