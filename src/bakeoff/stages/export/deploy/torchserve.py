"""Package a TorchScript model as a TorchServe .mar, with bakeoff's JSON handler, via torch-model-archiver."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from bakeoff.errors import BakeoffError, UsageError
from bakeoff.stages.export.deploy._layout import check_name, refuse_existing

HANDLER = Path(__file__).with_name("torchserve_handler.py")
SIGNATURE_FILE = "bakeoff_signature.json"
# `python -m model_archiver.model_packaging` warns about a double import; its console script does this.
_ARCHIVER_MAIN = (
    "import sys; from model_archiver.model_packaging import generate_model_archive as g; sys.exit(g())"
)


def write(
    out: Path,
    name: str,
    *,
    model: Path,
    version: str = "1.0",
    input_shape: Sequence[int] | None = None,
    dtype: str = "float32",
) -> Path:
    """Write out/<name>.mar from a torch.jit.save file and return its path.

    `input_shape` is one sample's shape (no batch axis); with it the handler accepts one sample or a
    batch per request, without it every request must be a batch.
    """
    check_name(name)
    _check_torchscript(model)
    mar = out / f"{name}.mar"
    refuse_existing(mar)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bakeoff-mar-") as tmp:
        signature = Path(tmp) / SIGNATURE_FILE
        signature.write_text(json.dumps(_signature(input_shape, dtype)), encoding="utf-8")
        export = Path(tmp) / "export"
        export.mkdir()
        _archive(name, version, model, signature, export)
        # Archive beside the output first, so a server watching `out` never sees a partial .mar.
        shutil.move(export / mar.name, mar)
    return mar


def _signature(input_shape: Sequence[int] | None, dtype: str) -> dict[str, object]:
    signature: dict[str, object] = {"dtype": dtype}
    if input_shape is not None:
        signature["shape"] = [int(d) for d in input_shape]
    return signature


def _check_torchscript(model: Path) -> None:
    if not model.is_file():
        raise UsageError(f"TorchScript model {model} is not a file: pass the .pt written by torch.jit.save")
    names: list[str] = []
    if zipfile.is_zipfile(model):
        with zipfile.ZipFile(model) as archive:
            names = archive.namelist()
    if not any(n.endswith("/constants.pkl") for n in names):
        raise UsageError(
            f"{model} is not a TorchScript archive: save the model with torch.jit.save(torch.jit.trace(...))"
        )


def _archiver() -> list[str]:
    if importlib.util.find_spec("model_archiver") is not None:
        return [sys.executable, "-c", _ARCHIVER_MAIN]
    script = shutil.which("torch-model-archiver")
    if script is None:
        raise BakeoffError("torch-model-archiver is not installed: run `pip install torch-model-archiver`")
    return [script]


def _archive(name: str, version: str, model: Path, signature: Path, export: Path) -> None:
    command = [
        *_archiver(),
        *("--model-name", name, "--version", version),
        *("--serialized-file", str(model), "--handler", str(HANDLER)),
        *("--extra-files", str(signature), "--export-path", str(export)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"
        raise BakeoffError(f"torch-model-archiver failed for {model}: {last}")
