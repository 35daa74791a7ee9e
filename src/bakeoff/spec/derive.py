"""A spec derived from a user's own model: what the torch and Keras walkers (frameworks/*/derive.py)
share. Pure Python: the walkers run in a framework's worker, the parent validates what they return.

A walker adds layers as plain dicts in execution order, names each after where it sits in the user's
model, and notes every op it cannot express; `finish` then refuses the model with all of them at once,
one per line, so the user sees everything that blocks the twin in one go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bakeoff.errors import PairError


def spec_name(where: str) -> str:
    """The identifier a place in the user's model is named by in a spec (before making it unique)."""
    base = re.sub(r"\W", "_", where).strip("_") or "layer"
    return base if base[0].isalpha() or base[0] == "_" else f"l_{base}"


@dataclass
class Builder:
    flag: str  # --torch or --keras: the side the user gave
    ref: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    def name(self, where: str) -> str:
        """A spec name (an identifier, unique) for a place in the user's model: 'features.0' -> features_0."""
        base = spec_name(where)
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def add_input(self, where: str, shape: tuple[int, ...]) -> str:
        name = self.name(where)
        self.inputs.append({"name": name, "shape": list(shape)})
        return name

    def add(self, where: str, kind: str, inputs: list[str], **fields: Any) -> str:
        name = self.name(where)
        self.layers.append({"name": name, "type": kind, "inputs": list(inputs), **fields})
        return name

    def layer(self, name: str) -> dict[str, Any]:
        return next(layer for layer in self.layers if layer["name"] == name)

    def refuse(self, op: str, where: str, why: str = "") -> None:
        self.unsupported.append(f"unsupported: {op} at '{where}'" + (f" ({why})" if why else ""))

    def finish(self, model_name: str, output: str | None, output_shape: tuple[int, ...]) -> dict[str, Any]:
        """The spec as a dict; a PairError listing every unsupported op, one per line, if any."""
        if self.unsupported or output is None:
            count = len(self.unsupported)
            head = (
                f"{self.flag} {self.ref!r}: cannot derive a spec, {count} unsupported op(s) "
                "(bakeoff can build a twin only from the layers a spec holds: `bakeoff show --help`)"
            )
            raise PairError("\n".join([head, *self.unsupported]))
        # A model that embeds an input takes token ids there.
        embedded = {layer["inputs"][0] for layer in self.layers if layer["type"] == "embedding"}
        for spec_input in self.inputs:
            if spec_input["name"] in embedded:
                spec_input["dtype"] = "int64"
        return {
            "name": model_spec_name(model_name),
            "description": f"derived by bakeoff from {self.flag} {self.ref}",
            "inputs": self.inputs,
            "layers": self.layers,
            "outputs": [output],
            "task": task_for(output_shape),
        }


def task_for(shape: tuple[int, ...]) -> dict[str, Any]:
    """A vector of several values is read as class scores, one value as a regression target."""
    if len(shape) == 1 and shape[0] > 1:
        return {"type": "classification", "num_classes": shape[0]}
    return {"type": "regression"}


def torch_name(cls: type) -> str:
    """torch.nn.modules.pixelshuffle.PixelShuffle -> torch.nn.PixelShuffle, as users write it."""
    module = cls.__module__
    if module.startswith("torch.nn.modules"):
        module = "torch.nn"
    return f"{module}.{cls.__qualname__}"


def model_spec_name(model_name: str) -> str:
    """A derived spec's name (and the run's, and a deployment's default): the user's class or factory
    name, with what a file or model name cannot hold replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)[:64] or "model"
