"""The TF Serving layout: a real Keras SavedModel copied to <name>/<version>/ still loads and answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bakeoff.errors import BakeoffError
from bakeoff.stages.export.deploy import TARGETS, tfserving
from tests.stages.export.deploy.conftest import ExportedKeras


@pytest.mark.slow
def test_layout_loads_and_answers_like_keras(keras_savedmodel: ExportedKeras, tmp_path: Path) -> None:
    base = tfserving.write(keras_savedmodel.savedmodel, tmp_path / "models", "dense", version=3)
    assert base == tmp_path / "models" / "dense"
    assert (base / "3" / "saved_model.pb").is_file()
    assert (base / "3" / "variables").is_dir()
    assert [p.name for p in base.iterdir()] == ["3"]
    serve = tf.saved_model.load(str(base / "3")).signatures["serving_default"]
    (answer,) = serve(x=tf.constant(keras_savedmodel.batch)).values()
    np.testing.assert_allclose(answer.numpy(), keras_savedmodel.expected, atol=1e-5)


@pytest.mark.slow
def test_refuses_to_overwrite_a_version(keras_savedmodel: ExportedKeras, tmp_path: Path) -> None:
    tfserving.write(keras_savedmodel.savedmodel, tmp_path, "dense")
    with pytest.raises(BakeoffError, match="already exists"):
        tfserving.write(keras_savedmodel.savedmodel, tmp_path, "dense")
    tfserving.write(keras_savedmodel.savedmodel, tmp_path, "dense", version=2)
    assert sorted(p.name for p in (tmp_path / "dense").iterdir()) == ["1", "2"]


def test_refuses_a_folder_without_saved_model_pb(tmp_path: Path) -> None:
    (tmp_path / "src" / "variables").mkdir(parents=True)
    with pytest.raises(BakeoffError, match=r"no saved_model\.pb"):
        tfserving.write(tmp_path / "src", tmp_path / "out", "m")
    assert not (tmp_path / "out").exists()


def test_refuses_a_savedmodel_without_variables(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(BakeoffError, match="no variables/"):
        tfserving.write(tmp_path / "src", tmp_path / "out", "m")


@pytest.mark.parametrize(("name", "version"), [("bad name", 1), ("../up", 1), ("m", 0)])
def test_refuses_bad_names_and_versions(tmp_path: Path, name: str, version: int) -> None:
    with pytest.raises(BakeoffError):
        tfserving.write(tmp_path, tmp_path / "out", name, version=version)


def test_a_failed_copy_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src" / "variables").mkdir(parents=True)
    (tmp_path / "src" / "saved_model.pb").write_bytes(b"")

    def broken_copy(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        tfserving.write(tmp_path / "src", tmp_path / "out", "m")
    assert list((tmp_path / "out" / "m").iterdir()) == []


def test_registry_names_the_three_servers() -> None:
    assert TARGETS["tfserving"] is tfserving.write
    assert set(TARGETS) == {"tfserving", "triton", "torchserve"}
