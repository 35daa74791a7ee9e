"""Loads a spec from a zoo name, a YAML file or a dict, turning every mistake into one SpecError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import yaml
from pydantic import ValidationError

from bakeoff.errors import SpecError, UsageError, one_line
from bakeoff.spec.flops import count_params
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import IDENTIFIER, LAYER_TYPES, MODEL_NAME, ModelSpec

ZOO_DIR = Path(__file__).parent / "zoo"


def zoo_names() -> list[str]:
    return sorted(p.stem for p in ZOO_DIR.glob("*.yaml"))


def resolve(model: str) -> Graph:
    """A zoo name or a path to a YAML spec, validated and shape-checked."""
    path = ZOO_DIR / f"{model}.yaml"
    if not path.exists():
        path = Path(model)
        if not path.exists():
            raise UsageError(
                f"model '{model}' is neither a zoo model ({', '.join(zoo_names())}) nor an existing file"
            )
        if path.is_dir():
            raise UsageError(f"model '{model}' is a directory; give a YAML spec file or a zoo name")
    spec = load_file(path)
    try:
        graph = build_graph(spec)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    check_size(graph, str(path))
    return graph


# Training holds the weights, their gradients and Adam's two moments: four fp32 copies per framework.
TRAINING_COPIES = 4


def check_size(graph: Graph, source: str) -> None:
    """Refuses, before any worker allocates anything, a model whose training state cannot fit in memory."""
    params = count_params(graph)
    need = params * 4 * TRAINING_COPIES
    available = psutil.virtual_memory().available
    if need > available:
        raise SpecError(
            f"{source}: the model has {params:,} parameters; training needs about {need / 2**30:,.1f} GiB "
            f"(fp32 weights, gradients and Adam's two moments) and this machine has "
            f"{available / 2**30:,.1f} GiB available"
        )


def load_file(path: Path) -> ModelSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}); a spec is YAML"
        ) from exc
    except OSError as exc:
        raise SpecError(f"{path}: cannot read it: {exc.strerror}") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise SpecError(f"{path}: bad YAML at {where}: {exc.problem or exc.context}") from exc
    except yaml.reader.ReaderError as exc:
        raise SpecError(
            f"{path}: bad YAML: character {exc.character!r} at byte {exc.position}: {exc.reason}"
        ) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: bad YAML: {one_line(str(exc))}") from exc
    if root is not None:
        _refuse_duplicate_keys(root, str(path))
    lines = _line_numbers(root) if root is not None else {}
    return from_dict(data, source=str(path), lines=lines)


def _refuse_duplicate_keys(node: yaml.Node, source: str) -> None:
    """YAML lets a later key silently replace an earlier one; in a spec that is always a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in seen:
                first = seen[key.value]
                raise SpecError(
                    f"{source} (line {line}): key '{key.value}' is given twice (first on line {first})"
                )
            seen[key.value] = line
            _refuse_duplicate_keys(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, source)


def from_dict(data: Any, source: str = "spec", lines: dict[tuple[Any, ...], int] | None = None) -> ModelSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping with name, inputs, layers and task")
    _check_layer_types(data, source, lines or {})
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        place = _strip_tags(errors[0]["loc"])
        # A union (an int or a pair) reports each branch at the same place: the deepest says most.
        error = max(
            (e for e in errors if _strip_tags(e["loc"])[: len(place)] == place),
            key=lambda e: len(_strip_tags(e["loc"])),
        )
        loc = _strip_tags(error["loc"])
        line = _nearest_line(loc, lines or {})
        where = f" (line {line})" if line else ""
        others = len({_strip_tags(e["loc"])[: len(place)] for e in errors}) - 1
        more = f" (and {others} more)" if others else ""
        raise SpecError(f"{source}{where}: {_dotted(loc) or 'spec'}: {_message(error)}{more}") from exc


# Messages pydantic writes for a regular expression, said in words a spec author can act on.
PATTERNS = {
    IDENTIFIER: "a name of letters, digits and '_', not starting with a digit",
    MODEL_NAME: "a name starting with a letter, a digit or '_', without '/', '\\' or control characters",
}


def _message(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch":
        wanted = PATTERNS.get(error.get("ctx", {}).get("pattern"), error["msg"])
        return f"must be {wanted}; got {error['input']!r}"
    got = error.get("input")
    if isinstance(got, bool | int | float | str) or got is None:
        return f"{error['msg']}; got {got!r}"
    return str(error["msg"])


def _check_layer_types(data: dict[str, Any], source: str, lines: dict[tuple[Any, ...], int]) -> None:
    layers = data.get("layers")
    if not isinstance(layers, list):
        return
    for index, layer in enumerate(layers):
        kind = layer.get("type") if isinstance(layer, dict) else None
        if kind not in LAYER_TYPES:
            line = _nearest_line(("layers", index, "type"), lines)
            where = f" (line {line})" if line else ""
            raise SpecError(
                f"{source}{where}: layers[{index}].type: unknown layer type {kind!r}; "
                f"valid types: {', '.join(LAYER_TYPES)}"
            )


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic puts the discriminator value into the location: ('layers', 2, 'conv2d', 'filters').
    # A union puts the branch into it too: ('strides', 'constrained-int') or ('strides', 'tuple[...]').
    out: list[Any] = []
    for i, part in enumerate(loc):
        if i > 0 and isinstance(loc[i - 1], int) and part in LAYER_TYPES:
            continue
        if isinstance(part, str) and ("constrained-" in part or "[" in part):
            continue
        out.append(part)
    return tuple(out)


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_numbers(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(_line_numbers(value, (*path, key.value)))
            lines[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_numbers(item, (*path, index)))
    return lines


def _nearest_line(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
