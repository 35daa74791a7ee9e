"""The TorchServe .mar: a real archive from torch-model-archiver whose handler answers like the model."""

from __future__ import annotations

import importlib
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from bakeoff.errors import BakeoffError
from bakeoff.stages.export.deploy import torchserve


@dataclass
class ServeContext:
    """The two attributes of TorchServe's `ts.context.Context` that a handler reads when loading."""

    system_properties: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).eval()
    traced = torch.jit.trace(model, torch.zeros(2, 4))
    path = tmp_path_factory.mktemp("torch") / "tiny.pt"
    torch.jit.save(traced, str(path))
    return path, model


@pytest.fixture(scope="module")
def mar(scripted: tuple[Path, torch.nn.Module], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("store")
    return torchserve.write(out, "tiny", model=scripted[0], version="2.0", input_shape=(4,))


@pytest.mark.slow
def test_archive_manifest_and_model(
    mar: Path, scripted: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    assert mar.name == "tiny.mar"
    with zipfile.ZipFile(mar) as archive:
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
        archive.extractall(tmp_path)
    assert manifest["model"]["modelName"] == "tiny"
    assert manifest["model"]["modelVersion"] == "2.0"
    assert manifest["model"]["serializedFile"] == "tiny.pt"
    assert manifest["model"]["handler"] == "torchserve_handler.py"
    x = torch.randn(5, 4)
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "tiny.pt"))(x), scripted[1](x))


@pytest.mark.slow
def test_handler_answers_like_the_model(
    mar: Path, scripted: tuple[Path, torch.nn.Module], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = _load_served_handler(mar, tmp_path, monkeypatch)
    sample, batch = torch.randn(4), torch.randn(3, 4)
    requests = [
        {"body": sample.tolist()},  # TorchServe has decoded an application/json body
        {"data": json.dumps(batch.tolist()).encode()},  # any other content type arrives as bytes
    ]
    answers = handler.handle(requests, None)
    assert len(answers) == 2
    json.dumps(answers)
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(answers[0]), scripted[1](sample[None])[0])
        torch.testing.assert_close(torch.tensor(answers[1]), scripted[1](batch))


@pytest.mark.slow
def test_handler_refuses_a_bad_request_and_answers_the_rest_of_its_batch(
    mar: Path, scripted: tuple[Path, torch.nn.Module], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = _load_served_handler(mar, tmp_path, monkeypatch)
    statuses: dict[int, tuple[int, str]] = {}

    class Context:  # records what TorchServe's Context.set_response_status would send per request
        def set_response_status(self, code: int, phrase: str, idx: int) -> None:
            statuses[idx] = (code, phrase)

    sample = torch.randn(4)
    requests = [
        {"body": [[[1.0, 2.0, 3.0, 4.0]]]},  # one rank too many
        {"body": sample.tolist()},
        {"data": b"[1.0, 2.0,"},  # malformed JSON
        {"body": [["a", "b", "c", "d"]]},  # strings for floats
    ]
    answers = handler.handle(requests, Context())
    assert sorted(statuses) == [0, 2, 3] and all(code == 400 for code, _ in statuses.values())
    assert "fits neither one sample" in answers[0]["error"] and "fits neither" in statuses[0][1]
    assert "JSONDecodeError" in answers[2]["error"] and "error" in answers[3]
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(answers[1]), scripted[1](sample[None])[0])


def _load_served_handler(mar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Unpack the .mar and import its handler as TorchServe does: from the model dir, by file name."""
    with zipfile.ZipFile(mar) as archive:
        archive.extractall(tmp_path)
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "torchserve_handler", raising=False)
    handler = importlib.import_module("torchserve_handler")
    context = ServeContext({"model_dir": str(tmp_path), "gpu_id": None, "batch_size": 4}, manifest)
    assert handler.handle(None, context) is None
    return handler


def test_refuses_a_file_that_is_not_torchscript(tmp_path: Path) -> None:
    (tmp_path / "weights.pt").write_bytes(b"not a zip")
    with pytest.raises(BakeoffError, match="not a TorchScript archive"):
        torchserve.write(tmp_path / "out", "tiny", model=tmp_path / "weights.pt")


def test_refuses_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(BakeoffError, match="not a file"):
        torchserve.write(tmp_path / "out", "tiny", model=tmp_path / "missing.pt")


@pytest.mark.slow
def test_refuses_to_overwrite_a_mar(mar: Path, scripted: tuple[Path, torch.nn.Module]) -> None:
    with pytest.raises(BakeoffError, match="already exists"):
        torchserve.write(mar.parent, "tiny", model=scripted[0])


def test_names_the_install_when_the_archiver_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        monkeypatch.context() as patch,
        pytest.raises(BakeoffError, match="pip install torch-model-archiver"),
    ):
        patch.setattr(importlib.util, "find_spec", lambda name: None)
        patch.setattr(torchserve.shutil, "which", lambda name: None)
        torchserve._archiver()
