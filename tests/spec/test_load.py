"""Spec loading and validation: good specs load, bad ones give one line that says where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakeoff.errors import SpecError, UsageError
from bakeoff.spec.load import from_dict, resolve, zoo_names


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    return path


def test_zoo_has_the_five_models() -> None:
    assert zoo_names() == ["lenet", "lstm-tiny", "resnet-mini", "simplenet", "transformer-tiny"]


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_model_resolves(name: str) -> None:
    graph = resolve(name)
    assert graph.spec.name == name
    assert graph.nodes


def test_dict_spec_with_defaults() -> None:
    spec = from_dict(
        {
            "name": "tiny",
            "inputs": [{"name": "x", "shape": [4]}],
            "layers": [{"type": "dense", "units": 3}],
            "task": {"type": "classification", "num_classes": 3},
        }
    )
    assert spec.inputs[0].dtype == "float32"
    assert spec.task.loss_name == "cross_entropy"


def test_unknown_layer_type_lists_valid_ones_with_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
name: bad
inputs: [{name: x, shape: [4]}]
layers:
  - {type: dense, units: 3}
  - {type: denze, units: 3}
task: {type: regression}
""",
    )
    with pytest.raises(SpecError) as err:
        resolve(str(path))
    message = str(err.value)
    assert "line 5" in message and "layers[1].type" in message and "'denze'" in message
    assert "dense, conv2d, max_pool2d" in message


def test_bad_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ninputs: [\n  - oops\nlayers: []\n")
    with pytest.raises(SpecError, match=r"bad YAML at line \d+, column \d+"):
        resolve(str(path))


def test_field_error_names_field_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
name: bad
inputs: [{name: x, shape: [8, 8, 1]}]
layers:
  - type: conv2d
    filters: -4
    kernel_size: 3
task: {type: regression}
""",
    )
    with pytest.raises(SpecError) as err:
        resolve(str(path))
    assert "(line 5)" in str(err.value) and "layers[0].filters" in str(err.value)
    assert "greater than 0" in str(err.value)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(SpecError, match="units_typo"):
        from_dict(
            {
                "name": "t",
                "inputs": [{"name": "x", "shape": [4]}],
                "layers": [{"type": "dense", "units": 3, "units_typo": 1}],
                "task": {"type": "regression"},
            }
        )


def test_classification_needs_classes() -> None:
    with pytest.raises(SpecError, match="num_classes"):
        from_dict(
            {
                "name": "t",
                "inputs": [{"name": "x", "shape": [4]}],
                "layers": [{"type": "dense", "units": 3}],
                "task": {"type": "classification"},
            }
        )


def test_missing_model_lists_zoo() -> None:
    with pytest.raises(UsageError, match=r"neither a zoo model .*simplenet"):
        resolve("no-such-model")


def test_spec_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="a spec is a mapping"):
        resolve(str(write(tmp_path, "- just\n- a list\n")))
