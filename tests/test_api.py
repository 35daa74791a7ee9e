"""bakeoff from a notebook: `bakeoff.parity` and `bakeoff.run` on model objects held in this process,
handed to the workers as .keras and torch.export .pt2 files. The documented example is executed as
written in docs/notebook.md, so the docs and the code cannot drift apart."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import bakeoff
from bakeoff.errors import PairError

DOC = Path(__file__).parents[1] / "docs" / "notebook.md"


def documented_example() -> str:
    """The first ```python block of docs/notebook.md."""
    match = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"{DOC} has no ```python block"
    return match.group(1)


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch object alone: derived, its twin checked against it (and against its .pt2), then a quick
    run of two stages that returns the run directory and a verdict."""
    monkeypatch.chdir(tmp_path)  # the example writes to ./bakeoff-runs
    namespace: dict[str, Any] = {}
    exec(compile(documented_example(), str(DOC), "exec"), namespace)
    check, result = namespace["check"], namespace["result"]
    assert check.ok, repr(check)
    assert check.exact_max_abs is not None and check.exact_max_abs <= 1e-5
    assert check.first_divergent is None and check.max_output_diff < 1e-5
    assert (check.folder / "Sequential.pt2").is_file()
    assert (check.folder / "Sequential_torch.py").is_file()
    assert result.path.is_dir() and result.path.name.endswith("-Sequential")
    assert result.headline and not result.failed, repr(result)
    assert {"training", "inference"} <= set(result.winners)
    assert any(case.startswith("train/torch-eager") for case in result.timings)
    assert "verdict:" in repr(result) and "run directory:" in repr(result)
    shown = result._repr_html_()
    assert "<iframe srcdoc=" in shown and "report.html" in shown
    assert "parity ok" in check._repr_html_()


def keras_mlp() -> Any:
    import keras
    from keras import layers

    inputs = keras.Input(shape=(20,))
    x = layers.Dense(16, activation="relu")(inputs)
    x = layers.LayerNormalization()(x)
    return keras.Model(inputs, layers.Dense(3)(x), name="tabular")


@pytest.mark.slow
def test_a_keras_object_alone(tmp_path: Path) -> None:
    check = bakeoff.parity(keras_mlp(), input_shape=(20,), out=tmp_path, threads=1)
    assert check.ok, repr(check)
    assert check.exact_max_abs is None  # a .keras file is the model itself; no stand-in to prove
    assert (check.folder / "tabular.keras").is_file()
    assert (check.folder / "derived" / "tabular" / "twin_torch.py").is_file()


@pytest.mark.slow
def test_a_pair_of_objects(tmp_path: Path) -> None:
    import keras
    import torch
    from keras import layers
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    model = keras.Sequential([keras.Input((20,)), layers.Dense(16, activation="relu"), layers.Dense(3)])
    check = bakeoff.parity(torch=net, keras=model, input_shape="20", out=tmp_path, threads=1)
    assert check.ok, repr(check)
    assert check.exact_max_abs is not None and check.exact_max_abs <= 1e-5
    assert "Sequential_torch.py" in check.result.model and ".keras" in check.result.model
    assert net.training  # the object is handed back in the mode it came in


def test_what_is_not_a_model_is_one_line() -> None:
    import torch
    from torch import nn

    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("no forward yet\n(a second line of framework text)")

    for call in (
        lambda: bakeoff.parity(42, input_shape=(3,)),
        lambda: bakeoff.parity(torch=keras_mlp(), input_shape=(20,)),
        lambda: bakeoff.parity(Broken(), input_shape=(3,)),
    ):
        with pytest.raises(PairError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and message, message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(PairError, match=re.escape("got a int; give a torch.nn.Module, a keras.Model")):
        bakeoff.parity(42, input_shape=(3,))


def test_import_bakeoff_imports_no_framework() -> None:
    heavy = "{'torch', 'tensorflow', 'keras'}"
    code = f"import sys, bakeoff; bakeoff.__version__; assert not {heavy} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_arrays_become_the_npz_that_data_takes(tmp_path: Path) -> None:
    """A torch user's images come channels-first; the .npz holds them channels-last, as specs do."""
    import numpy as np

    from bakeoff.api import _data

    x, y = np.zeros((4, 1, 28, 28), np.float32), np.arange(4)
    saved = _data((x, y), tmp_path, (1, 28, 28))
    assert saved is not None
    with np.load(saved) as arrays:
        assert arrays["x"].shape == (4, 28, 28, 1) and list(arrays["y"]) == [0, 1, 2, 3]
    assert _data("mnist", tmp_path, None) == "mnist" and _data(None, tmp_path, None) is None
