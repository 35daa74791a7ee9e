"""The model servers the serve stage can start, by name. Modules load lazily: each pulls its own client
libraries, and `bakeoff --help` must stay light."""

from __future__ import annotations

import importlib

from bakeoff.errors import UsageError
from bakeoff.stages.serve.servers.base import Launcher

# name on the command line -> module with a module-level `launcher`
SERVERS = {
    "tfserving": "bakeoff.stages.serve.servers.tfserving",
    "triton": "bakeoff.stages.serve.servers.triton",
    "torchserve": "bakeoff.stages.serve.servers.torchserve",
    "ray": "bakeoff.stages.serve.servers.ray_serve",
}


def launcher(name: str) -> Launcher:
    if name not in SERVERS:
        raise UsageError(f"--server: '{name}' is not one of {', '.join(SERVERS)}")
    module = importlib.import_module(SERVERS[name])
    return module.launcher
