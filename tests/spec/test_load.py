"""Spec loading and validation: good specs load, bad ones give one line that says where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakeoff.errors import SpecError, UsageError
from bakeoff.spec.graph import build_graph
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


IMAGE_SPEC = """\
name: {name}
inputs: [{{name: x, shape: [28, 28, 1]}}]
task: {{type: classification, num_classes: 10}}
layers:
  - {layer}
  - {{type: flatten}}
  - {{type: dense, units: 10}}
"""


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (
            "{type: conv2d, filters: 4, kernel_size: 3, strides: 0}",
            "layers[0].strides: Input should be greater than 0; got 0",
        ),
        (
            "{type: conv2d, filters: 4, kernel_size: 0}",
            "layers[0].kernel_size: Input should be greater than 0; got 0",
        ),
        (
            "{type: conv2d, filters: 4, kernel_size: [3, 0]}",
            "layers[0].kernel_size[1]: Input should be greater than 0",
        ),
        ("{type: max_pool2d, pool_size: 0}", "layers[0].pool_size: Input should be greater than 0; got 0"),
        (
            "{type: conv2d, filters: true, kernel_size: 3}",
            "layers[0].filters: Input should be a valid integer; got True",
        ),
        (
            "{type: conv2d, filters: 4, kernel_size: 2.5}",
            "layers[0].kernel_size: Input should be a valid integer",
        ),
        ("{type: dropout, rate: true}", "layers[0].rate: Input should be a valid number; got True"),
    ],
)
def test_impossible_layer_values_are_one_line_errors(tmp_path: Path, layer: str, expected: str) -> None:
    """Zero strides, pools and kernels used to pass and then divide by zero or crash parity; a YAML
    boolean used to become the integer 1."""
    path = write(tmp_path, IMAGE_SPEC.format(name="t", layer=layer))
    with pytest.raises(SpecError) as err:
        resolve(str(path))
    assert expected in str(err.value)
    assert "\n" not in str(err.value) and "(line 5)" in str(err.value)


def test_a_model_name_that_is_not_a_file_or_keras_name_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, IMAGE_SPEC.format(name="my/model", layer="{type: max_pool2d}"))
    with pytest.raises(SpecError, match=r"name: must be a name starting with .* without '/'.*got 'my/model'"):
        resolve(str(path))


def test_duplicate_keys_are_refused_not_overwritten(tmp_path: Path) -> None:
    path = write(
        tmp_path, IMAGE_SPEC.format(name="t", layer="{type: conv2d, filters: 4, filters: 8, kernel_size: 3}")
    )
    with pytest.raises(SpecError, match=r"\(line 5\): key 'filters' is given twice"):
        resolve(str(path))


def test_binary_spec_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01binary")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        resolve(str(path))


def test_an_input_no_layer_reads_is_refused() -> None:
    spec = from_dict(
        {
            "name": "two-inputs",
            "inputs": [{"name": "x", "shape": [4]}, {"name": "unused", "shape": [4]}],
            "layers": [{"type": "dense", "units": 1}],
            "task": {"type": "regression"},
        }
    )
    with pytest.raises(SpecError, match="inputs: 'unused' is not read by any layer"):
        build_graph(spec)


def test_a_model_too_large_for_memory_is_refused_before_any_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        IMAGE_SPEC.format(name="t", layer="{type: dense, units: 1000000000}")
        .replace("  - {type: flatten}\n", "", 1)
        .replace("layers:\n", "layers:\n  - {type: flatten}\n"),
    )
    with pytest.raises(SpecError, match=r"parameters; training needs about [\d,.]+ GiB .* available"):
        resolve(str(path))
