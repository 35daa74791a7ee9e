"""Loads a spec from a zoo name, a YAML file or a dict, turning every mistake into one SpecError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bakeoff.errors import SpecError, UsageError
from bakeoff.spec.graph import Graph, build_graph
from bakeoff.spec.schema import LAYER_TYPES, ModelSpec

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
        return build_graph(spec)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc


def load_file(path: Path) -> ModelSpec:
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise SpecError(f"{path}: bad YAML at {where}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: bad YAML: {exc}") from exc
    lines = _line_numbers(root) if root is not None else {}
    return from_dict(data, source=str(path), lines=lines)


def from_dict(data: Any, source: str = "spec", lines: dict[tuple[Any, ...], int] | None = None) -> ModelSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping with name, inputs, layers and task")
    _check_layer_types(data, source, lines or {})
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = _strip_tags(error["loc"])
        line = _nearest_line(loc, lines or {})
        where = f" (line {line})" if line else ""
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(f"{source}{where}: {_dotted(loc) or 'spec'}: {error['msg']}{more}") from exc


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
    out: list[Any] = []
    for i, part in enumerate(loc):
        if i > 0 and isinstance(loc[i - 1], int) and part in LAYER_TYPES:
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
