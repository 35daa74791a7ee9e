"""`bakeoff serve`: one model server on the exported model, up until Ctrl-C, for the user's own clients."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from bakeoff.cli.options import FitEpochs, JsonFlag, Model, Out, RayAddress, Seed, TfServingBin, Threads
from bakeoff.cli.output import console, progress, quiet
from bakeoff.errors import UsageError

# Every artifact one of the four servers serves, exported once.
SERVED_ARTIFACTS = ["keras-savedmodel", "torch-onnx", "torch-torchscript"]


def serve(
    model: Model = "simplenet",
    server: Annotated[
        str,
        typer.Option(
            "--server",
            help="tfserving (tensorflow_model_server when installed, else bakeoff's TF Serving API server), "
            "triton, torchserve or ray.",
        ),
    ] = "tfserving",
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Main port [default: free].")
    ] = None,
    from_run: Annotated[
        Path | None,
        typer.Option("--run", help="Serve the artifacts of this run directory instead of exporting anew."),
    ] = None,
    batching: Annotated[
        bool, typer.Option("--batching/--no-batching", help="Server-side dynamic batching.")
    ] = True,
    tfserving_bin: TfServingBin = None,
    ray_address: RayAddress = None,
    epochs: FitEpochs = 3,
    runs: Out = Path("bakeoff-runs"),
    seed: Seed = 0,
    threads: Threads = None,
    as_json: JsonFlag = False,
) -> None:
    """Start one model server on 127.0.0.1 and keep it up until Ctrl-C (then stop it and all it started).

    Exports the model first (trained twin -> SavedModel, ONNX, TorchScript) unless --run names a run
    directory that has them. Prints the endpoints; with --json one JSON line, then it keeps serving.
    """
    from bakeoff import runner
    from bakeoff.spec.load import resolve
    from bakeoff.stages.export.stage import artifacts_root
    from bakeoff.stages.export.stage import options_for as export_options
    from bakeoff.stages.serve.servers import launcher as get_launcher
    from bakeoff.stages.serve.servers.base import ServeModel
    from bakeoff.stages.serve.stage import _specs

    graph = resolve(model)
    chosen = get_launcher(server)
    reason = chosen.unavailable()
    if reason:
        raise UsageError(f"--server {server}: {reason}")
    out = console()
    if from_run is None:
        options = {
            "threads": threads,
            "seed": seed,
            "export": export_options(SERVED_ARTIFACTS, epochs, 64, 1e-3, None, 18, False),
        }
        outcome = runner.run_stages(model, runs, ["export"], options, quiet if as_json else progress(out))
        run_dir = outcome.path
    else:
        run_dir = from_run
        if not artifacts_root(run_dir).is_dir():
            raise UsageError(
                f"--run {run_dir}: no artifacts/ folder; run `bakeoff run --stages export` first"
            )
    inputs, outputs = _specs(graph)
    options_: dict[str, object] = {"tfserving_bin": tfserving_bin} if tfserving_bin else {}
    if ray_address:
        options_["ray_address"] = ray_address
    serve_model = ServeModel(
        name=graph.spec.name,
        artifacts=artifacts_root(run_dir),
        inputs=inputs,
        outputs=outputs,
        workdir=run_dir / "serve" / f"{server}-interactive",
        batching=batching,
        threads=threads or 1,
        port=port,
        options=options_,
    )
    running = chosen.start(serve_model)
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        info = {
            "server": running.server,
            "implementation": running.implementation,
            "endpoints": [
                {"protocol": e.protocol, "address": e.address, "model": e.model} for e in running.endpoints
            ],
            "pid": running.pid,
            "cold_start_s": round(running.cold_start_s, 2),
            "log": str(running.log_path),
        }
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            out.print(f"{running.server}: {running.implementation} (cold start {running.cold_start_s:.1f} s)")
            for e in running.endpoints:
                out.print(f"  {e.protocol:16} {e.address}  model '{e.model}'", highlight=False)
            out.print("serving until Ctrl-C", highlight=False)
        while not stop["now"] and running.proc.poll() is None:
            time.sleep(0.2)
        if running.proc.poll() is not None and not stop["now"]:
            raise UsageError(
                f"{running.server} exited with code {running.proc.returncode}; see {running.log_path}"
            )
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        if not as_json:
            out.print(f"stopped {running.server}")


COMMANDS = (serve,)
