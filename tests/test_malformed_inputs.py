"""Property-based: malformed specs, option values and run records either work or end in a BakeoffError
with one plain line, never another exception. Bounded example counts keep the suite fast."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakeoff.data.datasets import load as load_dataset
from bakeoff.errors import BakeoffError
from bakeoff.results.run import load_run
from bakeoff.results.store import RunStore, make_record
from bakeoff.runner import check_stages
from bakeoff.spec.codegen import keras_code, torch_code
from bakeoff.spec.flops import count_flops
from bakeoff.spec.graph import build_graph
from bakeoff.spec.load import check_size, from_dict, resolve
from bakeoff.spec.schema import LAYER_TYPES
from bakeoff.stages.infer import stage as infer_stage
from bakeoff.stages.train.shared import TrainOptions
from bakeoff.stages.train.training import check_options
from bakeoff.twins.parity import ParityOptions

# Generated inputs per test: the issue asks for at least 500 per run of the suite. No example database:
# every run draws afresh and writes nothing into the work tree.
EXAMPLES = {"specs": 250, "zoo": 150, "files": 60, "records": 60, "train": 60, "parity": 60, "stages": 40}


def examples(name: str) -> settings:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def plain_or_success(action: Callable[[], object]) -> None:
    try:
        action()
    except BakeoffError as exc:
        message = str(exc)
        assert message.strip(), "an empty error message"
        assert "\n" not in message and "\x1b" not in message, message


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 6),
    st.integers(10**9, 10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["relu", "same", "valid", "x", "gelu", "float32", "int64"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=4,
)
LAYER_KEYS = [
    "units",
    "filters",
    "kernel_size",
    "strides",
    "pool_size",
    "padding",
    "rate",
    "heads",
    "vocab_size",
    "dim",
    "max_length",
    "groups",
    "activation",
    "fn",
    "epsilon",
    "momentum",
    "return_sequences",
    "use_bias",
    "name",
    "inputs",
    "bogus",
]
layers = st.builds(
    lambda kind, extra: {"type": kind, **extra},
    st.sampled_from([*LAYER_TYPES, "bogus"]),
    st.dictionaries(st.sampled_from(LAYER_KEYS), values, max_size=3),
)
inputs = st.fixed_dictionaries(
    {"name": st.sampled_from(["x", "y", "1bad", ""]), "shape": st.lists(st.integers(-1, 40), max_size=4)},
    optional={"dtype": st.sampled_from(["float32", "int32", "int64", "str"])},
)
specs = st.fixed_dictionaries(
    {
        "name": st.one_of(st.text(max_size=10), scalars),
        "inputs": st.lists(inputs, max_size=2),
        "layers": st.lists(layers, max_size=4),
        "task": st.fixed_dictionaries(
            {"type": st.sampled_from(["classification", "regression", "x"])},
            optional={"num_classes": values, "loss": values},
        ),
    },
    optional={"outputs": values, "description": values, "extra": values},
)


def build_everything(spec: Any) -> None:
    graph = build_graph(from_dict(spec))
    check_size(graph, "spec")
    count_flops(graph)
    torch_code(graph)
    keras_code(graph)


@examples("specs")
@given(specs)
def test_generated_specs(spec: dict[str, Any]) -> None:
    plain_or_success(lambda: build_everything(spec))


ZOO = {
    name: resolve(name).spec.model_dump(mode="json") for name in ("lenet", "transformer-tiny", "resnet-mini")
}


@examples("zoo")
@given(st.sampled_from(sorted(ZOO)), st.integers(0, 30), st.sampled_from(LAYER_KEYS), values)
def test_zoo_specs_with_one_field_broken(name: str, index: int, key: str, value: Any) -> None:
    spec = json.loads(json.dumps(ZOO[name]))
    layer = spec["layers"][index % len(spec["layers"])]
    layer[key] = value
    plain_or_success(lambda: build_everything(spec))


@examples("files")
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_spec_files_of_any_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    plain_or_success(lambda: resolve(str(path)))


record_lines = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).map(str.encode),
    st.dictionaries(st.sampled_from(["schema", "stage", "case", "status", "framework", "metrics"]), values)
    .map(json.dumps)
    .map(str.encode),
    st.just(json.dumps(make_record("train", "torch-eager", "ok", framework="torch")).encode()),
)


@examples("records")
@given(st.lists(record_lines, max_size=6))
def test_records_files_with_any_lines(tmp_path: Path, lines: list[bytes]) -> None:
    store = RunStore.create(tmp_path, "m")
    store.write_run({"model": "m", "stages": ["train"], "options": {}})
    store.records_path.write_bytes(b"\n".join(lines))
    plain_or_success(lambda: load_run(store.path).skipped_note)


GRAPH = resolve("simplenet")
DATASET = load_dataset(GRAPH, "mnist", 0)
numbers = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True))


@examples("train")
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "epochs": st.integers(-2, 5),
            "batch_size": st.integers(-2, 10**5),
            "lr": numbers,
            "device": st.sampled_from(["cpu", "cuda", "tpu"]),
            "compile_mode": st.sampled_from(["default", "max-autotune", "fast"]),
            "train_samples": st.none() | st.integers(-1, 10**5),
        },
    )
)
def test_training_options(options: dict[str, Any]) -> None:
    plain_or_success(lambda: check_options(GRAPH, TrainOptions(**options), DATASET))


@examples("parity")
@given(numbers, numbers, st.integers(-2, 64), st.none() | st.integers(-2, 8))
def test_parity_options(atol: float, grad_atol: float, batch: int, threads: int | None) -> None:
    plain_or_success(lambda: ParityOptions(atol=atol, grad_atol=grad_atol, batch=batch, threads=threads))


@examples("stages")
@given(
    st.lists(st.sampled_from(["parity", "train", "pipeline", "export", "infer", "serve", ""]), max_size=5),
    st.lists(st.text(max_size=12), max_size=3),
    st.lists(st.integers(-3, 10**4), max_size=4),
)
def test_stage_and_infer_options(stages: list[str], runtimes: list[str], batch_sizes: list[int]) -> None:
    plain_or_success(lambda: check_stages(stages))
    options = {"infer": {"runtimes": runtimes or ["onnxruntime"], "batch_sizes": batch_sizes}}
    plain_or_success(lambda: infer_stage.check(GRAPH, options))


def test_the_property_tests_draw_at_least_500_inputs() -> None:
    assert sum(EXAMPLES.values()) >= 500


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
