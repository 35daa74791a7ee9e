"""Sends a finished run's numbers to an experiment tracker (MLflow or TensorBoard), from its run directory.

Both trackers read the same scalars, pulled from the newest record per case, so a number in MLflow, in
TensorBoard and in the report is the same number. Neither path imports torch or TensorFlow: the CLI
process that calls this stays free of both frameworks (importing TensorFlow alone costs seconds).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import unquote, urlsplit, urlunsplit

from bakeoff.errors import BakeoffError, UsageError, check_choices
from bakeoff.results.run import Run

KINDS = ("mlflow", "tensorboard")
EXPERIMENT = "bakeoff"

# What each kind needs importable; sqlalchemy and alembic back the local sqlite store.
_NEEDS = {"mlflow": ("mlflow", "sqlalchemy", "alembic"), "tensorboard": ("tensorboard",)}
_DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
_PACKAGE = {"mlflow": "mlflow-skinny", "tensorboard": "tensorboard"}

_PARAM_VALUE_CHARS = 500
_KEY_CHARS = 250  # MLflow's limit on metric and param keys
_METRICS_PER_BATCH = 1000  # MLflow's log_batch limits
_PARAMS_PER_BATCH = 100


@dataclass(frozen=True)
class Scalar:
    """One number from one case: `step` orders a curve (training step, epoch); `batch` is an infer batch."""

    stage: str
    case: str
    name: str
    value: float
    step: int = 0
    batch: int | None = None


def check_kinds(kinds: Sequence[str]) -> list[str]:
    """The requested trackers, each once, when every one is known and its library importable (one-line
    UsageError otherwise), so a typo fails before a long run, not after it."""
    if not kinds:
        return []
    given = list(dict.fromkeys(kinds))
    check_choices("--track", "tracker", given, KINDS)
    for kind in given:
        _check_installed(kind)
    return given


def track(kind: str, run: Run, files: Sequence[Path] = ()) -> str:
    """Logs `run` to tracker `kind`; `files` (report.html, summary.md, ...) go along where the tracker keeps
    files, those missing are skipped. Returns one line saying where it went, for the CLI to print."""
    check_kinds([kind])
    if kind == "mlflow":
        return _track_mlflow(run, [f for f in files if f.is_file()])
    return _track_tensorboard(run)


def scalars(run: Run) -> list[Scalar]:
    """The numbers worth charting, from the newest ok record per case; failed cases have none to give."""
    out: list[Scalar] = []
    for record in run.latest:
        if record.get("status") != "ok":
            continue
        stage, case, m = record["stage"], str(record["case"]), record.get("metrics") or {}
        if stage == "parity" and case in ("outputs", "gradients"):
            out += _some(stage, case, max_abs_diff=m.get("max_abs"))
        elif stage == "train" and isinstance(m.get("samples_per_s"), dict):
            out += _train(case, m)
        elif stage == "pipeline" and case == "input-bound":
            ratio = m.get("ratio")
            step_ratio = ratio.get("ratio") if isinstance(ratio, dict) else None
            out += _some(stage, f"{case}/{record.get('framework')}", step_ratio=step_ratio)
        elif stage == "pipeline":
            out += _some(stage, case, samples_per_s=m.get("samples_per_s"))
        elif stage == "export" and "size_bytes" in m:
            verification = m.get("verification") or {}
            out += _some(
                stage,
                case,
                size_bytes=m.get("size_bytes"),
                accuracy=verification.get("accuracy"),
                max_abs_diff=verification.get("max_abs_diff"),
            )
        elif stage == "infer" and isinstance(m.get("batches"), dict):
            out += _infer(case, m["batches"])
    return out


def _train(mode: str, m: dict[str, Any]) -> list[Scalar]:
    step_s = m.get("step_s") or {}
    median_step = step_s.get("median") if isinstance(step_s, dict) else None
    out = _some(
        "train",
        mode,
        samples_per_s=m["samples_per_s"].get("median"),
        step_ms=1000 * median_step if _number(median_step) else None,
        utilization=m.get("utilization"),
    )
    per_epoch = m.get("val_acc_per_epoch") or []
    if per_epoch:
        # A curve over epochs (step = epoch number) whose last point is the final val_acc.
        out += [
            Scalar("train", mode, "val_acc", float(a), i) for i, a in enumerate(per_epoch, 1) if _number(a)
        ]
    else:
        out += _some("train", mode, val_acc=m.get("val_acc"))
    out += [
        Scalar("train", mode, "loss", float(v), i)
        for i, v in enumerate(m.get("step_losses") or [])
        if _number(v)
    ]
    return out


def _infer(case: str, batches: dict[str, Any]) -> list[Scalar]:
    out = []
    for key, entry in sorted(batches.items(), key=lambda kv: _int(kv[0])):
        median = (entry.get("stats") or {}).get("median")
        if not key.isdigit() or not _number(median) or median <= 0:
            continue
        batch = int(key)
        per_s = entry.get("samples_per_s")
        out += [
            Scalar("infer", case, "p50_ms", 1000 * median, batch=batch),
            Scalar("infer", case, "samples_per_s", per_s if _number(per_s) else batch / median, batch=batch),
        ]
    return out


def _some(stage: str, case: str, **values: Any) -> list[Scalar]:
    return [Scalar(stage, case, name, float(v)) for name, v in values.items() if _number(v)]


def _number(value: Any) -> TypeGuard[float]:
    # bool is an int to Python, but a pass/fail flag is not a measurement; NaN was stored as null.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _check_installed(kind: str) -> None:
    missing = [m for m in _NEEDS[kind] if importlib.util.find_spec(m) is None]
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if kind == "mlflow" and uri and uri.split(":", 1)[0].split("+")[0] not in _DATABASES:
        missing = [m for m in missing if m == "mlflow"]  # a tracking server keeps its own store
    if missing:
        raise UsageError(
            f"--track {kind} needs {_PACKAGE[kind]} (missing: {', '.join(missing)}): "
            "pip install 'bakeoff[track]'"
        )


# --- MLflow -------------------------------------------------------------------------------------------


def mlflow_key(*parts: str) -> str:
    """`parts` joined by "/" as a valid MLflow key: MLflow allows only alphanumerics and _ - . space /,
    and refuses names that a path would normalise differently ("a//b", "./a", "..")."""
    text = "/".join(parts)
    text = re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)
    segments = [s for s in text.split("/") if s not in ("", ".")]
    key = "/".join("_" if s == ".." else s for s in segments) or "_"
    return key[:_KEY_CHARS].rstrip("/")


def mlflow_metric_key(s: Scalar) -> str:
    """`<stage>/<case>/<name>`; infer adds `batch_<n>`, so each batch size is its own comparable column."""
    batch = () if s.batch is None else (f"batch_{s.batch}",)
    return mlflow_key(s.stage, s.case, *batch, s.name)


def local_tracking_uri(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir.resolve() / 'mlflow' / 'mlflow.db').as_posix()}"


def flat_params(info: dict[str, Any]) -> dict[str, str]:
    """run.json's options flattened to `train.epochs`-style keys, plus the model's size, as short strings."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
            return
        if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, dict | list):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        out[mlflow_key(prefix)] = text[:_PARAM_VALUE_CHARS]

    walk("", info.get("options") or {})
    for name in ("params", "flops_per_sample"):
        if info.get(name) is not None:
            out[f"model.{name}"] = str(info[name])
    return out


def _tags(run: Run) -> dict[str, str]:
    env = run.info.get("environment") or {}
    libraries = env.get("libraries") or {}
    gpus = ", ".join(str(g.get("name", g)) if isinstance(g, dict) else str(g) for g in env.get("gpus") or [])
    machine = " / ".join(str(p) for p in (env.get("hostname"), env.get("cpu"), gpus) if p)
    tags = {
        "model": run.model,
        "machine": machine or "?",
        "bakeoff": str(run.info.get("bakeoff") or libraries.get("bakeoff") or "?"),
        "bakeoff.run": run.path.name,
        "bakeoff.run_dir": str(run.path.resolve()),
        "failed_cases": str(len(run.failed)),
        "finished": str(run.finished).lower(),
    }
    tags |= {mlflow_key(f"library.{name}"): str(v) for name, v in libraries.items()}
    return tags


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    # MLflow (and alembic, creating a fresh sqlite store) log INFO lines to stderr on every start, and
    # MLflow's store trips deprecation warnings in newer SQLAlchemy: neither is the user's to act on.
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _shown_uri(uri: str) -> str:
    """The tracking URI without a password in it, fit to print."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _track_mlflow(run: Run, files: list[Path]) -> str:
    # Imported here: mlflow takes over a second to import, and most runs never track.
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    uri = os.environ.get("MLFLOW_TRACKING_URI") or local_tracking_uri(run.path)
    local = not os.environ.get("MLFLOW_TRACKING_URI")
    with _quiet_mlflow():
        try:
            if local:
                (run.path / "mlflow").mkdir(exist_ok=True)
            client = MlflowClient(uri)
            experiment_id = _experiment(client, uri, run.path if local else None)
            _drop_earlier(client, experiment_id, run, local)
            tags = _tags(run) | {"bakeoff.tracked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            run_id = client.create_run(experiment_id, run_name=run.path.name, tags=tags).info.run_id
            now = int(time.time() * 1000)
            metrics = [Metric(mlflow_metric_key(s), s.value, now, s.step) for s in scalars(run)]
            params = [Param(k, v) for k, v in flat_params(run.info).items()]
            for i in range(0, len(params), _PARAMS_PER_BATCH):
                client.log_batch(run_id, params=params[i : i + _PARAMS_PER_BATCH])
            for i in range(0, len(metrics), _METRICS_PER_BATCH):
                client.log_batch(run_id, metrics=metrics[i : i + _METRICS_PER_BATCH])
            for path in [run.path / "run.json", run.path / "records.jsonl", *files]:
                if path.is_file():
                    client.log_artifact(run_id, str(path))
            if (run.path / "artifacts").is_dir():
                client.log_artifacts(run_id, str(run.path / "artifacts"), "artifacts")
            client.set_terminated(run_id, "FINISHED")
        except (MlflowException, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BakeoffError(f"--track mlflow: logging to {_shown_uri(uri)} failed: {first}") from exc
    return (
        f"mlflow: run {run.path.name} ({run_id}) in experiment '{EXPERIMENT}', {len(metrics)} metric points, "
        f"at {_shown_uri(uri)}"
    )


def _experiment(client: Any, uri: str, run_dir: Path | None) -> str:
    """The "bakeoff" experiment's id, made if need be with its files beside its database: in the run
    directory for the run's own store, beside the file of a MLFLOW_TRACKING_URI sqlite store. MLflow's
    default would be ./mlruns under whatever directory the CLI ran from."""
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return str(client.create_experiment(EXPERIMENT, artifact_location=_artifact_location(uri, run_dir)))
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return str(found.experiment_id)


def _artifact_location(uri: str, run_dir: Path | None) -> str | None:
    if run_dir is not None:
        return str(run_dir.resolve() / "mlflow" / "artifacts")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///:memory:"):
        return str(Path(uri.removeprefix("sqlite:///").split("?")[0]).resolve().parent / "mlartifacts")
    return None  # a tracking server or file store has its own default, not the working directory


def _drop_earlier(client: Any, experiment_id: str, run: Run, local: bool) -> None:
    """Tracking the same run directory again (after `--resume`, say) replaces its MLflow run rather than
    adding a twin whose curves would double up. On a tracking server the old one stays restorable from
    MLflow's trash; in the run's own store its copied files go too, or every re-track would add a copy."""
    path = str(run.path.resolve())
    if "'" in run.path.name:
        return  # not expressible in a filter string; RunStore never names a run so
    earlier = client.search_runs([experiment_id], filter_string=f"tags.`bakeoff.run` = '{run.path.name}'")
    for old in earlier:
        if old.data.tags.get("bakeoff.run_dir") != path:
            continue
        client.delete_run(old.info.run_id)
        files = Path(unquote(urlsplit(old.info.artifact_uri).path)).resolve()
        if local and files.is_relative_to(run.path.resolve() / "mlflow" / "artifacts"):
            shutil.rmtree(files.parent, ignore_errors=True)


# --- TensorBoard --------------------------------------------------------------------------------------

_EVENT_SUFFIX = ".bakeoff"


def _track_tensorboard(run: Run) -> str:
    # The writer and protos, not tensorboard.summary or torch.utils.tensorboard: those reach for TensorFlow.
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    root = run.path / "tensorboard"
    by_dir: dict[Path, list[tuple[str, float, int]]] = {}
    for s in scalars(run):
        if s.stage == "train":
            # One directory per mode: TensorBoard draws each directory as a run, overlaid per tag.
            where, tag = root / "train" / _dir_name(s.case), f"train/{s.name}"
        else:
            where, tag = root / "stages", f"{s.stage}/{s.name}/{s.case}"
        by_dir.setdefault(where, []).append((tag, s.value, s.batch if s.batch is not None else s.step))

    try:
        # Writing again replaces this writer's own files, so re-tracking a run does not double its points.
        for old in root.glob(f"**/events.out.tfevents.*{_EVENT_SUFFIX}") if root.is_dir() else []:
            old.unlink()
        wall = time.time()
        name = f"events.out.tfevents.{int(wall)}.{socket.gethostname()}{_EVENT_SUFFIX}"
        for where, points in by_dir.items():
            where.mkdir(parents=True, exist_ok=True)
            with open(where / name, "wb") as f:
                writer = RecordWriter(f)
                writer.write(
                    event_pb2.Event(wall_time=wall, file_version="brain.Event:2").SerializeToString()
                )
                for tag, value, step in points:
                    summary = summary_pb2.Summary(
                        value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
                    )
                    writer.write(
                        event_pb2.Event(wall_time=wall, step=step, summary=summary).SerializeToString()
                    )
    except OSError as exc:
        raise BakeoffError(f"--track tensorboard: cannot write under {root}: {exc.strerror or exc}") from exc
    count = sum(len(p) for p in by_dir.values())
    return f"tensorboard: {count} scalars in {len(by_dir)} event files (view: tensorboard --logdir {root})"


def _dir_name(case: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "-", case).strip("-.") or "case"
