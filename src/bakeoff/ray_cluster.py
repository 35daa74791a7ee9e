"""A Ray cluster for bakeoff's Ray processes (Ray Serve in the serve stage, Ray Train in the distributed
stage): join an existing one at an address, or start a local one on 127.0.0.1 that lives in the calling
process's group (GCS, raylet and workers are its children) and goes with it.

The launcher side makes a short temp dir for a local cluster (`new_temp_dir`: Ray's unix sockets live
under it, and their paths must stay under 108 characters) and removes it after the process group is
stopped; the Ray process itself calls `init`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bakeoff.process_group import LOOPBACK

# An existing cluster's address when no --ray-address is given.
ADDRESS_ENV = "BAKEOFF_RAY_ADDRESS"
# The environment of a process that starts or joins a cluster: no usage reports, every worker's log line.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}


# Ray turns 127.0.0.1 given as the node address into the machine's interface address, unless Ray
# "clusters" are off (what Ray does on macOS and Windows: every address is then the loopback one). For a
# local cluster of bakeoff's own; read once, when ray is imported, by the driver and every Ray process.
LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def before_import(address: str | None) -> None:
    """In the Ray process, before `import ray`: keep a local cluster on 127.0.0.1 (its GCS, raylet and
    workers inherit this environment, so MASTER_ADDR and TF_CONFIG get 127.0.0.1 too)."""
    if not address:
        os.environ.update(LOCAL_ENV)


def address_of(given: str | None) -> str | None:
    """The cluster to join: the one given, else $BAKEOFF_RAY_ADDRESS; None: a local cluster of our own."""
    return given or os.environ.get(ADDRESS_ENV) or None


def new_temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="bakeoff-ray-"))


def remove_temp_dir(path: Path | str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def where(address: str | None) -> str:
    return f"the Ray cluster at {address}" if address else f"a local Ray cluster on {LOOPBACK}"


def init(
    address: str | None,
    temp_dir: Path | str,
    *,
    namespace: str = "bakeoff",
    num_cpus: int | None = None,
    log_to_driver: bool = False,
    env_vars: dict[str, str] | None = None,
) -> Any:
    """In the Ray process: join the cluster at `address` (the job's workers get `env_vars`), or start a
    local one whose every node and worker address is 127.0.0.1 (`before_import` must have run: Ray would
    otherwise take the machine's interface address, which then ends up in MASTER_ADDR and TF_CONFIG),
    with `num_cpus` CPUs (None: the machine's) and no dashboard; its processes inherit this one's
    environment."""
    before_import(address)
    import ray

    if address:
        runtime_env = {"env_vars": env_vars} if env_vars else None
        return ray.init(
            address=address, namespace=namespace, log_to_driver=log_to_driver, runtime_env=runtime_env
        )
    context = ray.init(
        _node_ip_address=LOOPBACK,
        _temp_dir=str(temp_dir),
        num_cpus=num_cpus,
        include_dashboard=False,
        namespace=namespace,
        log_to_driver=log_to_driver,
    )
    ip = ray.util.get_node_ip_address()
    if ip != LOOPBACK:
        ray.shutdown()
        raise RuntimeError(
            f"the local Ray cluster took {ip}, not {LOOPBACK}: ray was imported before "
            "ray_cluster.before_import ran"
        )
    return context


def missing(module: str, extra: str) -> str | None:
    """Why Ray's `module` cannot be used here, or None."""
    import importlib.util

    try:
        found = importlib.util.find_spec("ray") is not None and importlib.util.find_spec(module) is not None
    except ImportError:  # ray.train's package raises when its own dependencies (pyarrow) are missing
        found = False
    if not found:
        return f"{module} is not installed: pip install 'bakeoff[{extra}]'"
    return None
