"""The serve stage: each model server started on the exported model, checked against the in-process answer,
driven by bakeoff's load generator, and stopped with nothing left running.

Per server and batching setting (on: the server's dynamic batching; off: one request per model call) it
records, in one `serve` record per load case:

* `<server>/batching-<on|off>/slo`: throughput at the p99 SLO found by a rate search (open loop, Poisson
  arrivals), the knee curve (p50/p90/p99/p99.9 against offered load), cold start, correctness, the server's
  CPU and RSS over its whole process tree, the bad-input matrix and (TF Serving API) versions, labels and
  metrics; metrics.latency_s / throughput_rps are those of the best rate meeting the SLO;
* `<server>/batching-<on|off>/c<N>`: the closed-loop concurrency sweep, one record per level.

Every record carries settings.server ('tf-serving', 'triton', 'torchserve', 'ray'), settings.batching
('dynamic' | 'none'), settings.concurrency, settings.implementation (what exactly ran) and the load
generator's own ceiling, so no server is reported slower than the generator could drive it.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.errors import BakeoffError, UsageError
from bakeoff.results.store import make_record
from bakeoff.spec.graph import Graph
from bakeoff.stages.context import RunContext
from bakeoff.stages.export.stage import artifacts_root
from bakeoff.stages.serve.servers import SERVERS

DEFAULT_SERVERS = ("tfserving", "triton", "torchserve", "ray")
RECORD_NAME = {"tfserving": "tf-serving", "triton": "triton", "torchserve": "torchserve", "ray": "ray"}
# One closed-loop run of the sweep: record name, load target, inputs (gRPC), clients, extra settings.
_Run = tuple[str, Any, Any, int, dict[str, Any]]
# Servers' gRPC APIs, each measured in one closed-loop row beside the HTTP ones.
GRPC_PROTOCOLS = ("kserve-v2-grpc", "tfserving-grpc")
# The protocol the load runs over, first match wins: one shared client, each server's own API.
HTTP_PREFERENCE = ("tfserving-rest", "kserve-v2-http", "torchserve-rest", "ray-http")
MAX_LATENCIES = 5000  # raw latencies kept per record


@dataclass(frozen=True)
class ServeOptions:
    servers: tuple[str, ...] = DEFAULT_SERVERS
    slo_ms: float = 50.0
    duration: float = 5.0  # seconds per load point
    concurrency: tuple[int, ...] = (1, 4, 16, 64)
    knee: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # fractions of the SLO throughput
    search_steps: int = 7
    batching: tuple[bool, ...] = (True, False)
    max_batch_size: int = 64
    max_delay_ms: float = 2.0
    timeout_s: float = 5.0
    tfserving_bin: str | None = None
    ray_address: str | None = None
    quick: bool = False


def options_for(
    servers: list[str] | None,
    slo_ms: float,
    duration: float | None,
    quick: bool,
    tfserving_bin: str | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """The stage's entry in a run's options (run.json). --quick: 1 s per load point, 3 knee points, the
    sweep at 1, 16 and 64, a shorter rate search."""
    out: dict[str, Any] = {
        "servers": list(DEFAULT_SERVERS) if servers is None else servers,
        "slo_ms": slo_ms,
        "duration": duration if duration is not None else (1.0 if quick else 5.0),
        "tfserving_bin": tfserving_bin,
        "ray_address": ray_address,
        "quick": quick,
    }
    if quick:
        out.update({"concurrency": [1, 16, 64], "knee": [0.5, 1.0, 1.5], "search_steps": 5})
    return out


def options_of(options: dict[str, Any]) -> ServeOptions:
    serve: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in options.get("serve", {}).items()
    }
    return ServeOptions(**serve)


def check(graph: Graph, options: dict[str, Any]) -> None:
    opts = options_of(options)
    bad = [s for s in opts.servers if s not in SERVERS]
    if bad or not opts.servers:
        raise UsageError(f"--servers: {', '.join(bad) or '(none)'} not in {', '.join(SERVERS)}")
    if opts.slo_ms <= 0:
        raise UsageError(f"--slo-ms {opts.slo_ms}: give a positive p99 bound in milliseconds, e.g. 50")
    if opts.duration <= 0:
        raise UsageError(f"--duration {opts.duration}: give positive seconds per load point, e.g. 5")


# ------------------------------------------------------------------------------------------- the stage


def run(ctx: RunContext) -> None:
    from bakeoff.stages.serve import load

    opts = options_of(ctx.options)
    root = artifacts_root(ctx.store.path)
    payload = make_payload(ctx.graph, rows=1, seed=ctx.options.get("seed", 0))
    reference: np.ndarray | None = None
    note = ""
    stored = stored_reference(ctx.graph, root, rows=8)
    if stored is not None:
        check_inputs, reference = stored
    else:
        check_inputs = make_payload(ctx.graph, rows=8, seed=1 + ctx.options.get("seed", 0))
        try:
            reference = _reference(root, check_inputs)
        except BakeoffError as exc:
            note = f"no in-process reference ({exc}); answers were not checked"
    ctx.progress("serve: measuring the load generator's own ceiling against bakeoff's no-op server")
    ceiling_rps, ceiling = load.ceiling(duration=min(2.0, max(opts.duration, 1.0)))
    generator = {
        "ceiling_rps": ceiling_rps,
        "ceiling_p99_s": ceiling.percentile(99),
        "client": "asyncio raw HTTP/1.1",
    }
    ctx.results.setdefault("serve", {})["generator"] = generator
    done = {case for stage, case, _ in ctx.done if stage == "serve"}
    for name in opts.servers:
        for batching in opts.batching:
            case = f"{RECORD_NAME[name]}/batching-{'on' if batching else 'off'}"
            if f"{case}/slo" in done:
                continue
            ServerRun(
                ctx, opts, name, batching, root, payload, check_inputs, reference, generator, note
            ).run()


class ServerRun:
    """One server with one batching setting: start, check, measure, record, stop."""

    def __init__(
        self,
        ctx: RunContext,
        opts: ServeOptions,
        name: str,
        batching: bool,
        root: Path,
        payload: dict[str, np.ndarray],
        check_inputs: dict[str, np.ndarray],
        reference: np.ndarray | None,
        generator: dict[str, Any],
        note: str,
    ) -> None:
        self.ctx, self.opts, self.name, self.batching = ctx, opts, name, batching
        self.root, self.payload, self.check_inputs, self.reference = root, payload, check_inputs, reference
        self.generator, self.note = generator, note
        self.server = RECORD_NAME[name]
        self.case = f"{self.server}/batching-{'on' if batching else 'off'}"
        self.settings: dict[str, Any] = {
            "server": self.server,
            "batching": "dynamic" if batching else "none",
            "slo_ms": opts.slo_ms,
            "duration_s": opts.duration,
            "max_batch_size": opts.max_batch_size if batching else 1,
            "max_delay_ms": opts.max_delay_ms if batching else 0.0,
            "threads": ctx.options.get("threads") or 1,
            "rows_per_request": 1,
            "host": "127.0.0.1",
        }

    def fail(self, message: str, **metrics: Any) -> None:
        self.ctx.progress(f"serve: {self.case} failed: {message.splitlines()[0] if message else ''}")
        self.ctx.record(
            make_record(
                "serve",
                f"{self.case}/slo",
                "failed",
                message=message,
                settings=self.settings,
                metrics=metrics,
            )
        )

    def run(self) -> None:
        from bakeoff.stages.serve.servers import launcher as get_launcher
        from bakeoff.stages.serve.servers.base import ServeModel

        try:
            launcher = get_launcher(self.name)
        except (ImportError, AttributeError) as exc:
            self.fail(f"{self.name}'s launcher is not available in this build: {exc}")
            return
        reason = launcher.unavailable()
        if reason:
            self.fail(reason)
            return
        workdir = self.ctx.store.path / "serve" / f"{self.name}-{'batching' if self.batching else 'single'}"
        workdir.mkdir(parents=True, exist_ok=True)
        inputs, outputs = _specs(self.ctx.graph)
        options: dict[str, Any] = {}
        if self.name == "tfserving":
            options = {"versions": [1, 2], "labels": {"stable": 1, "canary": 2}}
            if self.opts.tfserving_bin:
                options["tfserving_bin"] = self.opts.tfserving_bin
        if self.name == "ray" and self.opts.ray_address:
            options["ray_address"] = self.opts.ray_address
        model = ServeModel(
            name=self.ctx.graph.spec.name.replace("_", "-") or "model",
            artifacts=self.root,
            inputs=inputs,
            outputs=outputs,
            workdir=workdir,
            batching=self.batching,
            max_batch_size=self.opts.max_batch_size,
            max_delay_ms=self.opts.max_delay_ms,
            threads=int(self.ctx.options.get("threads") or 1),
            options=options,
        )
        self.ctx.progress(f"serve: starting {self.name} (batching {'on' if self.batching else 'off'})")
        started = time.perf_counter()
        try:
            running = launcher.start(model)
        except BakeoffError as exc:
            self.fail(f"{self.name} did not start: {exc}")
            return
        except Exception as exc:  # a launcher's bug must not end the other servers' measurement
            self.fail(f"{self.name} did not start: {type(exc).__name__}: {exc}")
            return
        pgid = running.pid
        try:
            self.measure(running, time.perf_counter() - started)
        except Exception as exc:
            self.fail(f"{type(exc).__name__}: {exc}")
        finally:
            running.stop()
            left = processes_left(pgid)
            if left:
                self.ctx.progress(f"serve: {self.name} left {len(left)} process(es) behind: killing them")
                kill_left(pgid)

    # -------------------------------------------------------------------------------------- measure

    def measure(self, running: Any, start_s: float) -> None:
        from bakeoff.measure.sampler import ResourceSampler
        from bakeoff.stages.serve import load

        self.settings["implementation"] = running.implementation
        self.settings["protocols"] = running.protocols()
        answers = check_answers(running, self.check_inputs, self.reference)
        wrong = {p: a for p, a in answers.items() if a.get("status") == "wrong"}
        endpoint, variant = pick_http(running)
        self.settings["load_protocol"] = endpoint.protocol + (f" ({variant})" if variant else "")
        base = {
            "cold_start_s": running.cold_start_s or start_s,
            "answers": answers,
            "generator": self.generator,
            "implementation": running.implementation,
        }
        if wrong:
            self.fail(
                "wrong answers: " + "; ".join(f"{p}: {a['message']}" for p, a in wrong.items()),
                **base,
            )
            return
        if self.reference is None:
            base["note"] = self.note
        from bakeoff.stages.serve.protocols import codec

        c = codec(endpoint.protocol, variant)
        target = load.HttpTarget.of(endpoint.address, c.encode(endpoint, layout_for(running, self.payload)))
        ceiling = float(self.generator["ceiling_rps"])
        opts = self.opts

        def open_at(rate: float) -> load.LoadResult:
            self.ctx.progress(f"serve: {self.case}: {rate:.0f} req/s offered")
            return load.open_loop(target, rate, opts.duration, timeout_s=opts.timeout_s)

        load.closed_loop(target, 8, min(1.0, opts.duration))  # warm-up, discarded
        with ResourceSampler(running.pid, include_children=True, gpu=False) as sampler:
            search = load.rate_search(
                open_at, opts.slo_ms / 1000, _start_rate(target), ceiling, opts.search_steps
            )
            knee: list[load.LoadResult] = []
            if self.batching or not opts.quick:
                top = search.best_rps or max((r.achieved_rps for r in search.tried), default=100.0)
                rates = sorted({round(min(ceiling, max(1.0, f * top)), 1) for f in opts.knee})
                knee = load.knee(open_at, rates)
        extras: dict[str, Any] = {}
        if self.batching:
            extras["bad_inputs"] = bad_input_matrix(running, self.payload)
            if running.server == "tf-serving":
                extras["features"] = tfserving_features(running, self.payload)
            extras["metrics_scrape"] = scrape_metrics(running)
        best = search.best
        metrics = {
            **base,
            **extras,
            "slo_throughput_rps": search.best_rps,
            "slo_met": best is not None,
            "generator_bound": search.capped_by_generator,
            "rate_search": [r.summary() for r in search.tried],
            "knee": [r.summary() for r in knee],
            "resources": sampler.usage.to_dict(),
            "latency_s": _trim(best.latency_s if best else []),
            "throughput_rps": best.throughput_rps if best else [],
            "errors": best.errors if best else {},
            "timeouts": best.timeouts if best else 0,
        }
        if best is None:
            # No rate met the SLO: the lowest rate tried says how far off it was.
            low = min(search.tried, key=lambda r: r.offered_rps or 0)
            metrics.update(latency_s=_trim(low.latency_s), throughput_rps=low.throughput_rps)
        self.ctx.record(
            make_record(
                "serve",
                f"{self.case}/slo",
                "ok",
                settings={**self.settings, "concurrency": None, "mode": "open loop, Poisson arrivals"},
                metrics=metrics,
            )
        )
        self.ctx.results.setdefault("serve", {})[self.case] = {
            "implementation": running.implementation,
            "slo_throughput_rps": search.best_rps,
        }
        self.sweep(running, target)

    def sweep(self, running: Any, target: Any) -> None:
        from bakeoff.measure.sampler import ResourceSampler
        from bakeoff.stages.serve import load

        levels = (
            self.opts.concurrency if (self.batching or not self.opts.quick) else (max(self.opts.concurrency),)
        )
        runs: list[_Run] = [(f"c{level}", target, None, level, {}) for level in levels]
        for protocol in GRPC_PROTOCOLS:
            if protocol in running.protocols():
                # The server's gRPC API at the highest level, beside its HTTP rows: the same payload.
                runs.append(self._grpc_run(running, protocol, max(self.opts.concurrency)))
        for name, to, inputs, level, extra in runs:
            self.ctx.progress(f"serve: {self.case}: {level} concurrent clients ({name})")
            with ResourceSampler(running.pid, include_children=True, gpu=False) as sampler:
                r = load.closed_loop(
                    to, level, self.opts.duration, timeout_s=self.opts.timeout_s, inputs=inputs
                )
            bound = r.achieved_rps >= 0.8 * float(self.generator["ceiling_rps"])
            self.ctx.record(
                make_record(
                    "serve",
                    f"{self.case}/{name}",
                    "ok",
                    settings={**self.settings, "concurrency": level, "mode": "closed loop", **extra},
                    metrics={
                        **r.summary(),
                        "latency_s": _trim(r.latency_s),
                        "throughput_rps": r.throughput_rps,
                        "resources": sampler.usage.to_dict(),
                        "generator_bound": bound,
                        "generator_ceiling_rps": self.generator["ceiling_rps"],
                    },
                )
            )

    def _grpc_run(self, running: Any, protocol: str, level: int) -> _Run:
        from bakeoff.stages.serve.protocols import codec

        endpoint, c, timeout = running.endpoint(protocol), codec(protocol), self.opts.timeout_s
        extra = {
            "load_protocol": protocol,
            "generator_note": "the generator's ceiling was measured over HTTP; its gRPC client (grpc.aio) "
            "costs more per call, so a gRPC row is a lower bound where it nears that ceiling",
        }
        # The client is made inside the generator's event loop (grpc.aio channels belong to one loop).
        return (
            f"{protocol}/c{level}",
            lambda: c.client(endpoint, timeout),
            layout_for(running, self.payload),
            level,
            extra,
        )


# ---------------------------------------------------------------------------------------------- helpers


def _specs(graph: Graph) -> tuple[list[Any], list[Any]]:
    from bakeoff.stages.export.deploy.tensors import TensorSpec

    inputs = [TensorSpec(i.name, i.dtype, tuple(i.shape)) for i in graph.inputs]
    return inputs, [TensorSpec("output_0", "float32", tuple(graph.output_shape))]


def make_payload(graph: Graph, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of `rows` samples in the spec's (channels-last) layout and dtypes."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in graph.inputs:
        shape = (rows, *spec.shape)
        if spec.dtype in ("int32", "int64"):
            high = graph.int_ranges.get(spec.name, 10)
            out[spec.name] = rng.integers(0, high, size=shape).astype(spec.dtype)
        else:
            out[spec.name] = rng.random(shape, dtype=np.float32).astype(spec.dtype)
    return out


def stored_reference(graph: Graph, root: Path, rows: int) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """The export stage's validation inputs and the Keras twin's in-process outputs on them (what every
    artifact was verified against), so no TensorFlow starts in this process; None when not there."""
    from bakeoff.npz import load_arrays
    from bakeoff.stages.export.shared import reference_path

    data, ref = root / "data.npz", reference_path(root, "keras")
    if not (data.exists() and ref.exists()):
        return None
    arrays = load_arrays(data)
    keys = [f"x_val/{i}" for i in range(len(graph.inputs))]
    if not all(k in arrays for k in keys):
        return None
    inputs = {
        spec.name: arrays[k][:rows].astype(spec.dtype) for spec, k in zip(graph.inputs, keys, strict=True)
    }
    return inputs, load_arrays(ref)["outputs"][:rows]


def _reference(root: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    from bakeoff.stages.export.artifacts import ARTIFACTS, path_of
    from bakeoff.stages.serve.reference import reference_outputs

    savedmodel = path_of(root, ARTIFACTS["keras-savedmodel"])
    if not (savedmodel / "saved_model.pb").exists():
        raise BakeoffError("the keras-savedmodel artifact was not exported")
    return reference_outputs(savedmodel, inputs)


def layout_for(running: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A server whose model takes images channels-first (extra['layout'] == 'channels_first', a PyTorch
    artifact) gets the same samples transposed, so one reference checks every server."""
    if running.extra.get("layout") != "channels_first":
        return inputs
    return {k: np.ascontiguousarray(v.transpose(0, 3, 1, 2)) if v.ndim == 4 else v for k, v in inputs.items()}


def check_answers(
    running: Any, inputs: dict[str, np.ndarray], reference: np.ndarray | None
) -> dict[str, Any]:
    """Each endpoint's answer on `inputs` against the in-process output: 'ok', 'wrong' or 'error'."""
    from bakeoff.stages.serve.protocols import PROTOCOLS, codec, send

    out: dict[str, Any] = {}
    feed = layout_for(running, inputs)
    for endpoint in running.endpoints:
        if endpoint.protocol not in PROTOCOLS:
            continue
        variants = getattr(__import__(PROTOCOLS[endpoint.protocol], fromlist=["x"]), "variants", {None: None})
        for variant in variants:
            label = endpoint.protocol + (f" ({variant})" if variant else "")
            try:
                codec(endpoint.protocol, variant)
                got = send(endpoint, feed, variant=variant)
            except Exception as exc:
                out[label] = {"status": "error", "message": str(exc)[:300]}
                continue
            if reference is None:
                out[label] = {"status": "unchecked", "shape": list(got.shape)}
                continue
            ref = reference.reshape(got.shape) if got.size == reference.size else None
            if ref is None:
                out[label] = {
                    "status": "wrong",
                    "message": f"shape {list(got.shape)}, expected {list(reference.shape)}",
                }
                continue
            diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
            ok = bool(np.allclose(got, ref, rtol=1e-3, atol=1e-4))
            out[label] = {
                "status": "ok" if ok else "wrong",
                "max_abs_diff": diff,
                "message": ""
                if ok
                else f"max |served - in-process| = {diff:.3g} (tolerance 1e-4 + 1e-3 relative)",
            }
    return out


def pick_http(running: Any) -> tuple[Any, str | None]:
    for protocol in HTTP_PREFERENCE:
        if protocol in running.protocols():
            endpoint = running.endpoint(protocol)
            return endpoint, ("binary" if protocol == "kserve-v2-http" else None)
    raise BakeoffError(
        f"{running.server} has no HTTP endpoint the load generator speaks ({running.protocols()})"
    )


def _start_rate(target: Any) -> float:
    """A first rate for the search: a quarter of what 4 closed-loop clients get in half a second."""
    from bakeoff.stages.serve import load

    r = load.closed_loop(target, 4, 0.5)
    return max(10.0, r.achieved_rps / 2)


def _trim(values: list[float]) -> list[float]:
    if len(values) <= MAX_LATENCIES:
        return list(values)
    return sorted(random.Random(0).sample(values, MAX_LATENCIES))


def processes_left(pgid: int) -> list[int]:
    import psutil

    left = []
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError, OSError):
            if __import__("os").getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p.pid)
    return left


def kill_left(pgid: int) -> None:
    import os
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# ------------------------------------------------------------------------------------- bad input matrix

BAD_INPUTS = ("malformed_json", "wrong_shape", "wrong_dtype", "oversized", "unknown_model")


def bad_requests(endpoint: Any, payload: dict[str, np.ndarray]) -> dict[str, Any]:
    """The bad requests, each encoded by the endpoint's own (JSON) codec, then broken in one way."""
    from dataclasses import replace

    from bakeoff.stages.serve.protocols import Request, codec

    variants = getattr(__import__(_module(endpoint.protocol), fromlist=["x"]), "variants", {})
    c = variants.get("json") or variants.get("row") or codec(endpoint.protocol)
    good: Request = c.encode(endpoint, payload)
    wrong_shape = {k: np.concatenate([v, v[..., :1]], axis=-1) for k, v in payload.items()}
    out: dict[str, Any] = {
        "malformed_json": replace(good, body=good.body[: max(1, len(good.body) // 2)] + b"}{"),
        "wrong_shape": c.encode(endpoint, wrong_shape),
        "unknown_model": c.encode(replace(endpoint, model="no-such-model"), payload),
    }
    try:
        doc = json.loads(good.body)
        out["wrong_dtype"] = replace(good, body=json.dumps(_strings(doc)).encode())
    except ValueError:
        out["wrong_dtype"] = None
    big = 40 << 20  # past TorchServe's 6.5 MB and bakeoff's 16 MB default limits
    out["oversized"] = replace(good, body=b'{"instances": [[' + b"0.5," * (big // 4) + b"0.5]]}")
    return out


def _module(protocol: str) -> str:
    from bakeoff.stages.serve.protocols import PROTOCOLS

    return PROTOCOLS[protocol]


def _strings(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {
            k: ("BYTES" if k == "datatype" else _strings(v)) if k != "shape" else v for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_strings(v) for v in doc]
    if isinstance(doc, (int, float)) and not isinstance(doc, bool):
        return "not-a-number"
    return doc


def bad_input_matrix(running: Any, payload: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each bad request's status and message from the server (the real servers' answers are findings)."""
    from bakeoff.stages.serve.protocols import http_send

    endpoint, _ = pick_http(running)
    matrix: dict[str, Any] = {"protocol": endpoint.protocol}
    for kind, request in bad_requests(endpoint, layout_for(running, payload)).items():
        if request is None:
            matrix[kind] = {"status": None, "message": "not applicable to this protocol"}
            continue
        try:
            status, body, _ = http_send(endpoint.address, request, timeout_s=30)
        except OSError as exc:
            matrix[kind] = {"status": "connection", "message": str(exc)[:200]}
            continue
        matrix[kind] = {"status": status, "message": _message(body)}
    return matrix


def _message(body: bytes) -> str:
    text = body[:2000].decode("utf-8", "replace")
    with contextlib.suppress(ValueError, AttributeError):
        doc = json.loads(text)
        if isinstance(doc, dict):
            text = str(doc.get("error") or doc.get("message") or doc.get("detail") or text)
    return re.sub(r"\s+", " ", text).strip()[:200]


# ---------------------------------------------------------------------------------- production features


def scrape_metrics(running: Any) -> dict[str, Any]:
    import urllib.request

    url = running.extra.get("metrics_url")
    if not url:
        return {"status": "none", "message": "no metrics endpoint known for this server"}
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError as exc:
        return {"status": "error", "url": url, "message": str(exc)[:200]}
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {"status": "ok", "url": url, "series": len(series), "sample": series[:5]}


def version_counts(metrics_url: str) -> dict[str, float]:
    """Answered REST predictions per version, from bakeoff's TF Serving API server's /metrics."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        text = r.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("bakeoff_tfserving_requests_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if labels.get("code") == "200":
            v = labels.get("version", "")
            counts[v] = counts.get(v, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def tfserving_features(
    running: Any, payload: dict[str, np.ndarray], canary_share: float = 0.1, n: int = 400
) -> dict[str, Any]:
    """Versions 1 and 2 served side by side and switched; a canary label taking `canary_share` of the
    traffic, the split measured on the server's own per-version counters."""
    from dataclasses import replace

    from bakeoff.stages.serve.protocols import http_send, send
    from bakeoff.stages.serve.protocols.tfserving import codec as rest

    endpoint = running.endpoint("tfserving-rest")
    out: dict[str, Any] = {
        "implementation": running.implementation,
        "versions": running.extra.get("versions"),
    }
    try:
        v1 = send(replace(endpoint, version="1"), payload)
        v2 = send(replace(endpoint, version="2"), payload)
        out["versions_served"] = {"1": list(v1.shape), "2": list(v2.shape)}
        url = running.extra.get("metrics_url")
        if url and running.implementation != "tensorflow_model_server":
            before = version_counts(url)
            rng = random.Random(0)
            stable, canary = (
                replace(endpoint, version="label:stable"),
                replace(endpoint, version="label:canary"),
            )
            sent_canary = 0
            reqs = {e: rest.encode(e, payload) for e in (stable, canary)}
            for _ in range(n):
                e = canary if rng.random() < canary_share else stable
                sent_canary += e is canary
                http_send(e.address, reqs[e])
            after = version_counts(url)
            served = {v: after.get(v, 0) - before.get(v, 0) for v in after}
            total = sum(served.values()) or 1
            out["canary"] = {
                "target_share": canary_share,
                "sent_share": sent_canary / n,
                "served_share": served.get("2", 0) / total,
                "served_by_version": served,
                "how": "clients split by label (TF Serving's labels route, they do not split); the server's "
                "per-version counters measured the split",
            }
            # Switch: point 'canary' at version 1 (bakeoff's admin route; TF Serving reloads its config).
            from bakeoff.stages.serve.protocols import Request

            status, _body, _ = http_send(
                endpoint.address,
                Request(
                    "PUT", "/bakeoff/labels/canary", {"Content-Type": "application/json"}, b'{"version": 1}'
                ),
            )
            check_before = version_counts(url).get("1", 0)
            send(canary, payload)
            out["switch"] = {
                "status": status,
                "canary_now_serves": "1" if version_counts(url).get("1", 0) > check_before else "2",
            }
    except Exception as exc:
        out["error"] = str(exc)[:300]
    return out
