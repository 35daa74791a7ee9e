"""Tests for spec.codegen: the generated programs run, count the spec's parameters and match the twins."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bakeoff.spec import codegen
from bakeoff.spec.codegen import class_name, keras_code, torch_code
from bakeoff.spec.flops import count_params
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.load import from_dict, resolve, zoo_names

# Specs that reach what the zoo does not: uneven 'same' max pooling, even 'same' average pooling,
# stride-2 'same' with even padding, image concat and softmax, two inputs, int32 tokens, a GRU
# returning sequences, position embedding shorter than max_length, wrapped long lines, and a spec
# input named like the variable the generated code reuses.
CUSTOM_SPECS: list[dict[str, Any]] = [
    {
        "name": "two-inputs",
        "inputs": [{"name": "image", "shape": [9, 9, 3]}, {"name": "aux", "shape": [4]}],
        "layers": [
            {
                "name": "c1",
                "type": "conv2d",
                "filters": 8,
                "kernel_size": 3,
                "strides": 2,
                "padding": "same",
                "activation": "silu",
            },
            {"name": "c2", "type": "conv2d", "filters": 8, "kernel_size": [2, 3], "padding": "same"},
            {"name": "mp", "type": "max_pool2d", "pool_size": 2, "padding": "same"},
            {"name": "ap", "type": "avg_pool2d", "pool_size": 3, "strides": 1, "padding": "same"},
            {"name": "cat", "type": "concat", "inputs": ["ap", "mp"]},
            {"name": "sm", "type": "activation", "fn": "softmax"},
            {"name": "bn", "type": "batch_norm", "momentum": 0.99, "epsilon": 0.001},
            {"name": "gap", "type": "global_avg_pool"},
            {
                "name": "a_rather_long_projection_layer_name",
                "type": "dense",
                "units": 4,
                "activation": "tanh",
                "use_bias": False,
            },
            {"name": "sum", "type": "add", "inputs": ["a_rather_long_projection_layer_name", "aux"]},
            {"name": "bn1", "type": "batch_norm"},
            {"name": "d2", "type": "dense", "units": 3, "activation": "sigmoid"},
            {"name": "drop", "type": "dropout", "rate": 0.2},
            {"name": "out", "type": "dense", "units": 2, "activation": "softmax"},
        ],
        "task": {"type": "classification", "num_classes": 2},
    },
    {
        "name": "seq_mix",
        "inputs": [{"name": "tokens", "shape": [6], "dtype": "int32"}],
        "layers": [
            {"name": "emb", "type": "embedding", "vocab_size": 10, "dim": 8},
            {"name": "pe", "type": "position_embedding", "max_length": 8},
            {"name": "g", "type": "gru", "units": 8, "return_sequences": True},
            {"name": "d", "type": "dense", "units": 8, "activation": "gelu_tanh", "inputs": ["pe"]},
            {"name": "cat", "type": "concat", "inputs": ["g", "d"]},
            {"name": "act", "type": "activation", "fn": "gelu_tanh"},
            {"name": "ln", "type": "layer_norm", "epsilon": 1e-6},
            {"name": "att", "type": "attention", "heads": 2},
            {"name": "fl", "type": "flatten"},
            {"name": "fd", "type": "dense", "units": 16},
            {"name": "gp", "type": "global_avg_pool", "inputs": ["ln"]},
            {"name": "total", "type": "add", "inputs": ["fd", "gp"]},
            {"name": "head", "type": "dense", "units": 3, "activation": "relu"},
        ],
        "task": {"type": "regression"},
    },
    {
        "name": "residual x",
        "inputs": [{"name": "x", "shape": [4]}],
        "layers": [
            {"name": "d1", "type": "dense", "units": 4, "activation": "gelu"},
            {"name": "sum", "type": "add", "inputs": ["d1", "x"]},
            {"name": "h", "type": "dense", "units": 4},
        ],
        "task": {"type": "regression"},
    },
]


def all_graphs() -> dict[str, Graph]:
    graphs = {name: resolve(name) for name in zoo_names()}
    graphs.update({spec["name"]: build_graph(from_dict(spec)) for spec in CUSTOM_SPECS})
    return graphs


GRAPHS = all_graphs()

# Runs each generated program in its own namespace, builds the runtime twin of the same spec, copies
# the twin's (randomized) weights into the generated model node by node and compares outputs.
DRIVER = r"""
import json
import sys
from pathlib import Path

import numpy as np

from bakeoff.spec.graph import build_graph
from bakeoff.spec.load import from_dict


def load_program(path):
    namespace = {}
    exec(compile(Path(path).read_text(), path, "exec"), namespace)
    return namespace["model"]


def torch_case(graph, model):
    import torch
    from bakeoff.frameworks.torch.build import build

    torch.manual_seed(0)
    twin = build(graph).eval()
    model.eval()
    with torch.no_grad():
        for key, tensor in twin.state_dict().items():
            if "running_var" in key:
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.3)
    # Twin keys are layers.<node>.<...>, generated keys <node>.<...>; within a node the order agrees.
    twin_groups = {}
    for key, tensor in twin.state_dict().items():
        twin_groups.setdefault(key.split(".")[1], []).append(tensor)
    own_keys = {}
    for key in model.state_dict():
        own_keys.setdefault(key.split(".")[0], []).append(key)
    state = {}
    for node, keys in own_keys.items():
        assert len(keys) == len(twin_groups[node]), (node, keys)
        state.update(zip(keys, twin_groups[node], strict=True))
    model.load_state_dict(state)
    inputs = []
    for spec in graph.inputs:
        shape = (2, spec.shape[2], *spec.shape[:2]) if len(spec.shape) == 3 else (2, *spec.shape)
        if spec.name in graph.int_ranges:
            inputs.append(torch.randint(0, graph.int_ranges[spec.name], shape))
        else:
            inputs.append(torch.randn(shape))
    with torch.no_grad():
        out, expected = model(*inputs), twin(*inputs)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return params, list(out.shape), float((out - expected).abs().max())


def keras_case(graph, model):
    from bakeoff.frameworks.keras.build import build

    rng = np.random.default_rng(0)
    twin = build(graph)
    for layer in twin.layers:
        if not layer.weights:
            continue
        weights = [
            rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0, 0.3, w.shape)
            for w in layer.weights
        ]
        layer.set_weights(weights)
        model.get_layer(layer.name).set_weights(weights)
    inputs = []
    for spec in graph.inputs:
        if spec.name in graph.int_ranges:
            inputs.append(rng.integers(0, graph.int_ranges[spec.name], (2, *spec.shape)).astype(spec.dtype))
        else:
            inputs.append(rng.normal(size=(2, *spec.shape)).astype("float32"))
    args = inputs[0] if len(inputs) == 1 else inputs
    out = np.asarray(model(args, training=False))
    expected = np.asarray(twin(args, training=False))
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return params, list(out.shape), float(np.abs(out - expected).max())


def main():
    framework, manifest = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    case = torch_case if framework == "torch" else keras_case
    results = {}
    for entry in manifest:
        graph = build_graph(from_dict(entry["spec"]))
        params, shape, diff = case(graph, load_program(entry["program"]))
        results[entry["name"]] = {"params": params, "shape": shape, "max_diff": diff}
    print("RESULTS " + json.dumps(results))


main()
"""


def run_programs(framework: str, folder: Path) -> dict[str, dict[str, Any]]:
    """All generated programs of one framework in one process: torch and TensorFlow never share one."""
    generate = torch_code if framework == "torch" else keras_code
    manifest = []
    for index, (name, graph) in enumerate(GRAPHS.items()):
        program = folder / f"{framework}_{index}.py"
        program.write_text(generate(graph), encoding="utf-8")
        spec = graph.spec.model_dump(mode="json", exclude_none=True)
        manifest.append({"name": name, "program": str(program), "spec": spec})
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "driver.py").write_text(DRIVER, encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(folder / "driver.py"), framework, str(folder / "manifest.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS "))
    return json.loads(line.removeprefix("RESULTS "))


@pytest.fixture(scope="module")
def torch_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_programs("torch", tmp_path_factory.mktemp("torch"))


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_programs("keras", tmp_path_factory.mktemp("keras"))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GRAPHS))
def test_torch_program_matches_spec_and_twin(name: str, torch_results: dict[str, dict[str, Any]]) -> None:
    graph, result = GRAPHS[name], torch_results[name]
    assert result["params"] == count_params(graph, "torch")
    assert result["shape"] == [2, *graph.output_shape]
    assert result["max_diff"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GRAPHS))
def test_keras_program_matches_spec_and_twin(name: str, keras_results: dict[str, dict[str, Any]]) -> None:
    graph, result = GRAPHS[name], keras_results[name]
    assert result["params"] == count_params(graph)
    assert result["shape"] == [2, *graph.output_shape]
    assert result["max_diff"] < 1e-5


def test_simplenet_reads_like_the_article() -> None:
    graph = resolve("simplenet")
    assert "self.layer1 = nn.Linear(784, 128)" in torch_code(graph)
    assert "class Simplenet(nn.Module):" in torch_code(graph)
    assert torch_code(graph).endswith("model = Simplenet()\n")
    assert 'layers.Dense(128, activation="relu", name="layer1")' in keras_code(graph)
    assert "keras.Sequential(" in keras_code(graph)


def test_graphs_use_the_functional_api_and_helpers_only_when_needed() -> None:
    resnet, lenet = resolve("resnet-mini"), resolve("lenet")
    assert "keras.Model(inputs, outputs" in keras_code(resnet)
    assert "class SameAvgPool2d(nn.Module):" in torch_code(resnet)
    assert "F.pad(b1_out, (0, 1, 0, 1))" in torch_code(resnet)
    assert "SameAvgPool2d" not in torch_code(lenet)
    assert "import torch.nn.functional as F" not in torch_code(lenet)
    transformer = resolve("transformer-tiny")
    assert "class PositionEmbedding(layers.Layer):" in keras_code(transformer)
    assert "PositionEmbedding" not in keras_code(resnet)


def test_reused_variable_steps_aside_for_an_input_read_twice() -> None:
    code = torch_code(GRAPHS["residual x"])
    assert "h = F.gelu(self.d1(x))" in code
    assert "h = h + x" in code


def test_layers_the_output_does_not_need_are_left_out() -> None:
    spec = {**CUSTOM_SPECS[2], "outputs": ["d1"]}
    graph = build_graph(from_dict(spec))
    assert "self.h" not in torch_code(graph)
    assert 'name="h"' not in keras_code(graph)


@pytest.mark.parametrize(
    ("spec_name", "expected"),
    [
        ("simplenet", "Simplenet"),
        ("resnet-mini", "ResnetMini"),
        ("lstm_tiny", "LstmTiny"),
        ("myCNN v2", "MyCNNV2"),
        ("3d-net", "Model3dNet"),
    ],
)
def test_class_name_is_camel_case_of_the_spec_name(spec_name: str, expected: str) -> None:
    assert class_name(spec_name) == expected


def test_codegen_imports_no_framework() -> None:
    modules = sorted(Path(codegen.__file__).parent.glob("*.py"))
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in modules]
    nodes = [node for tree in trees for node in ast.walk(tree)]
    imported = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in nodes if isinstance(node, ast.ImportFrom)}
    assert not {m.split(".")[0] for m in imported} & {"torch", "keras", "tensorflow"}


def _ruff() -> str | None:
    beside = Path(sys.executable).parent / "ruff"
    return str(beside) if beside.exists() else shutil.which("ruff")


@pytest.mark.skipif(_ruff() is None, reason="ruff is not installed")
@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_program_is_as_ruff_formats_it(name: str, framework: str) -> None:
    code = (torch_code if framework == "torch" else keras_code)(GRAPHS[name])
    ruff = str(_ruff())
    fmt = [ruff, "format", "--isolated", "--diff", "-"]
    lint = [ruff, "check", "--isolated", "--select", "E,F,W,I", "-"]
    for command in (fmt, lint):
        done = subprocess.run(command, input=code, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
