"""onnx2tf in its own virtualenv: the environment's life cycle, and ONNX -> SavedModel conversions.

The conversion tests use the environment at $BAKEOFF_CONVERTER_ENV (else the default cache folder) and
create it when missing: about 90 s and 2.6 GB, once per machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.fixtures.onnx_models import MODELS, OnnxCase, onnx_cases, write_unsupported_op_model

from bakeoff.errors import BakeoffError, UsageError
from bakeoff.stages.export.converters import onnx2tf_env as o2tf


@pytest.fixture
def env_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    env = tmp_path / "caches" / "onnx2tf-env"
    monkeypatch.setenv(o2tf.ENV_VAR, str(env))
    return env


def test_env_dir_follows_the_variable_then_the_cache_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(o2tf.ENV_VAR, "/somewhere/env")
    assert o2tf.env_dir() == Path("/somewhere/env")
    monkeypatch.delenv(o2tf.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", "/cache")
    assert o2tf.env_dir() == Path("/cache/bakeoff/onnx2tf-env")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert o2tf.env_dir() == Path.home() / ".cache" / "bakeoff" / "onnx2tf-env"


def test_missing_env_without_install_names_both_commands(env_at: Path) -> None:
    with pytest.raises(UsageError) as caught:
        o2tf.ensure_env(install=False)
    message = str(caught.value)
    assert "bakeoff convert --setup" in message
    assert f"-m pip install onnx2tf=={o2tf.ONNX2TF_VERSION}" in message
    assert str(env_at) in message and "\n" not in message


def test_half_built_env_is_not_ready(env_at: Path) -> None:
    (env_at / "bin").mkdir(parents=True)
    (env_at / "bin" / "python").touch()
    assert not o2tf.is_ready(env_at)
    (env_at / o2tf.MARKER).write_text("onnx2tf==0.0.1\n")
    assert not o2tf.is_ready(env_at)
    (env_at / o2tf.MARKER).write_text(o2tf.REQUIREMENT + "\n")
    assert o2tf.is_ready(env_at)


def test_env_made_by_hand_with_pip_counts_as_ready(env_at: Path) -> None:
    (env_at / "bin").mkdir(parents=True)
    (env_at / "bin" / "python").touch()
    (env_at / "lib/python3.11/site-packages" / f"onnx2tf-{o2tf.ONNX2TF_VERSION}.dist-info").mkdir(
        parents=True
    )
    assert o2tf.ensure_env(install=False) == env_at


def test_foreign_folder_is_never_replaced(env_at: Path) -> None:
    env_at.mkdir(parents=True)
    (env_at / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="holds no onnx2tf"):
        o2tf.ensure_env()
    assert (env_at / "notes.txt").read_text() == "mine"


def test_partial_envs_of_dead_installs_are_removed(env_at: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as finished:
        pass  # waited for and reaped: its pid names no process now
    dead = env_at.with_name(f".{env_at.name}.partial-{finished.pid}-x")
    live = env_at.with_name(f".{env_at.name}.partial-{os.getpid()}-y")
    for path in (dead, live):
        path.mkdir(parents=True)
    o2tf._remove_abandoned(env_at)
    assert not dead.exists() and live.exists()


def test_scripts_follow_the_env_to_its_final_name(tmp_path: Path) -> None:
    partial, final = tmp_path / ".env.partial-1-x", tmp_path / "env"
    (partial / "bin").mkdir(parents=True)
    (partial / "bin" / "onnxsim").write_text(f"#!{partial}/bin/python\nimport onnxsim\n")
    (partial / "bin" / "python").symlink_to(sys.executable)
    o2tf._relocate_scripts(partial, final)
    assert (partial / "bin" / "onnxsim").read_text().startswith(f"#!{final}/bin/python\n")
    assert (partial / "bin" / "python").resolve() == Path(sys.executable).resolve()


def test_last_error_line_prefers_onnx2tf_error_over_traceback() -> None:
    output = (
        "W0000 00:00:1795574263.583509   18098 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
        "\x1b[31mERROR:\x1b[0m Frobnicate OP is not yet implemented.\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ModuleNotFoundError: No module named 'onnx2tf.ops.Frobnicate'\n"
    )
    assert o2tf.last_error_line(output) == "Frobnicate OP is not yet implemented."
    assert o2tf.last_error_line(output.replace("ERROR:", "")).startswith("ModuleNotFoundError")


@pytest.mark.slow
def test_failed_pip_install_is_one_line_and_leaves_nothing(
    env_at: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip fails as it would offline, without asking any index or wheel folder
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    lines: list[str] = []
    failed = r"pip install onnx2tf==[\d.]+ failed: No matching distribution"
    with pytest.raises(BakeoffError, match=failed) as caught:
        o2tf.ensure_env(progress=lines.append)
    assert "\n" not in str(caught.value)
    assert any("installing onnx2tf" in line for line in lines)
    # pip's own lines go to the log, not the terminal; the log is all that stays (no env, no partial one)
    log = env_at.with_name(f"{env_at.name}-setup.log")
    assert [p.name for p in env_at.parent.iterdir()] == [log.name]
    assert f"(full log: {log})" in str(caught.value) and "No matching distribution" in log.read_text()
    assert not any("No matching distribution" in line for line in lines)


@pytest.fixture(scope="session")
def converter_env() -> Path:
    return o2tf.ensure_env(progress=print)


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OnnxCase]:
    return onnx_cases(tmp_path_factory.getbasetemp() / "onnx-models")


def serve(savedmodel: Path, batch: np.ndarray) -> tuple[str, tuple[int | None, ...], np.ndarray]:
    """The serving signature's input name and shape, and its answer for `batch`."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(savedmodel)).signatures["serving_default"]
    ((name, spec),) = signature.structured_input_signature[1].items()
    answer = signature(**{name: tf.constant(batch)})
    assert list(answer) == ["output_0"]
    return name, tuple(spec.shape), answer["output_0"].numpy()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_savedmodel_takes_the_onnx_layout_and_answers_like_the_source(
    converter_env: Path, cases: dict[str, OnnxCase], name: str, tmp_path: Path
) -> None:
    case = cases[name]
    savedmodel = o2tf.onnx_to_savedmodel(case.onnx, tmp_path / "sm")
    assert sorted(p.name for p in savedmodel.iterdir()) == [
        "assets",
        "fingerprint.pb",
        "saved_model.pb",
        "variables",
    ]
    input_name, shape, answer = serve(savedmodel, case.batch)
    assert input_name == {"torch-conv": "x", "keras-conv": "image"}.get(name, "features")
    assert shape == (None, *case.batch.shape[1:])  # NCHW from torch, NHWC from Keras: nothing transposed
    assert np.abs(answer - case.expected).max() <= 1e-4


@pytest.mark.slow
def test_converting_again_replaces_the_savedmodel(
    converter_env: Path, cases: dict[str, OnnxCase], tmp_path: Path
) -> None:
    out = tmp_path / "sm"
    o2tf.onnx_to_savedmodel(cases["torch-mlp"].onnx, out)
    o2tf.onnx_to_savedmodel(cases["keras-mlp"].onnx, out)
    assert serve(out, cases["keras-mlp"].batch)[0] == "features"
    assert [p.name for p in tmp_path.iterdir()] == ["sm"]  # no staging folder left behind


def test_refuses_to_overwrite_a_folder_that_is_not_a_savedmodel(tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    out = tmp_path / "docs"
    out.mkdir()
    (out / "readme.txt").write_text("keep")
    with pytest.raises(UsageError, match="is not a SavedModel"):
        o2tf.onnx_to_savedmodel(onnx, out)
    assert (out / "readme.txt").exists()


def test_missing_onnx_file_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ONNX file not found"):
        o2tf.onnx_to_savedmodel(tmp_path / "absent.onnx", tmp_path / "sm")


@pytest.mark.slow
def test_corrupt_onnx_is_one_line(converter_env: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(BakeoffError, match=r"broken\.onnx: not a readable ONNX model") as caught:
        o2tf.onnx_to_savedmodel(path, tmp_path / "sm")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "sm").exists()


@pytest.mark.slow
def test_unsupported_op_carries_onnx2tf_error(converter_env: Path, tmp_path: Path) -> None:
    path = write_unsupported_op_model(tmp_path / "unsupported.onnx")
    with pytest.raises(BakeoffError, match=r"unsupported\.onnx: Frobnicate OP is not yet implemented"):
        o2tf.onnx_to_savedmodel(path, tmp_path / "sm")


@pytest.mark.slow
def test_timeout_is_one_line(converter_env: Path, cases: dict[str, OnnxCase], tmp_path: Path) -> None:
    with pytest.raises(BakeoffError, match=r"did not finish converting torch-conv\.onnx within 0\.5 s"):
        o2tf.onnx_to_savedmodel(cases["torch-conv"].onnx, tmp_path / "sm", timeout=0.5)
    assert [p.name for p in tmp_path.iterdir()] == []
