"""What a worker process keeps out: the 'native' worker imports neither framework, and the Keras worker
none of the extras Keras would load only because they are installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

PROBE = """
import importlib.util, json, sys
from bakeoff.worker import _block
_block({{"framework": {framework!r}, "job": {job!r}}})
found = {{}}
for name in {names!r}:
    try:
        __import__(name)
        found[name] = True
    except ImportError:
        found[name] = importlib.util.find_spec(name) is not None
print(json.dumps(found))
"""


def _importable(framework: str, job: str, names: list[str]) -> dict[str, bool]:
    """Which of `names` a fresh interpreter can import after the worker's block for such a request."""
    code = PROBE.format(framework=framework, job=job, names=names)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("framework", "names"),
    [("native", ["torch", "tensorflow", "keras"]), ("keras", ["sklearn", "pandas", "matplotlib"])],
)
def test_worker_keeps_modules_out(framework: str, names: list[str]) -> None:
    assert _importable(framework, "infer", [*names, "json"]) == {**dict.fromkeys(names, False), "json": True}


def test_a_users_own_model_may_import_anything() -> None:
    installed = importlib.util.find_spec("pandas") is not None
    assert _importable("keras", "byo", ["pandas"]) == {"pandas": installed}
