"""Export bake-off, parent side: train the PyTorch twin once, export every artifact from those weights
in the worker of the framework that makes it, quantize the ONNX files, then verify each artifact with
its own runtime against the model it came from. One record per artifact, export and verdict together.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bakeoff.data.datasets import load as load_dataset
from bakeoff.errors import BakeoffError, UsageError
from bakeoff.measure.isolation import WorkerResult, run_cases, run_grouped, run_workers
from bakeoff.npz import save_arrays
from bakeoff.results.store import make_record
from bakeoff.runtimes import RUNTIMES, WORKERS
from bakeoff.spec.graph import Graph
from bakeoff.stages.export.artifacts import ARTIFACTS, DEFAULT_ARTIFACTS, check_artifacts, path_of
from bakeoff.stages.export.shared import REFERENCE, reference_path, timed_export
from bakeoff.stages.export.verify import judge
from bakeoff.stages.train.shared import TrainOptions
from bakeoff.stages.train.training import prepare as prepare_training

Record = dict[str, Any]
# Who makes what, in order: a pass runs after the passes that make its artifacts' sources. 'native'
# quantizes the ONNX files, 'onnx2tf' runs in the parent (a subprocess in its own env), and the second
# torch pass converts the Keras ONNX file.
PASSES = (("torch", False), ("keras", None), ("native", None), ("onnx2tf", None), ("torch", True))


@dataclass(frozen=True)
class ExportOptions:
    artifacts: tuple[str, ...] = DEFAULT_ARTIFACTS
    # The twin is trained before export, so accuracies (and the int8 gate) mean something.
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    data: str | None = None
    opset: int = 18
    calibration: int = 256  # training samples calibrating both int8 paths (ORT static, TFLite full int8)
    case_timeout: float = 600.0
    seed: int = 0
    threads: int = 1

    def settings(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "weights": f"the PyTorch twin trained {self.epochs} epoch(s) eagerly from the canonical seed "
            "weights, then loaded into both twins: every artifact starts from the same trained weights",
            "verification": "each artifact run by its own runtime over the whole validation set and "
            "compared with the model it was made from; fp32 artifacts must match within 1e-4 x max(1, "
            "output scale), reduced precision must keep 99% of the fp32 accuracy (MLPerf's gate)",
        }


def check(graph: Graph, options: ExportOptions) -> None:
    check_artifacts(list(options.artifacts))
    if options.opset < 15:
        raise UsageError(f"--opset {options.opset}: the dynamo ONNX exporter needs opset 15 or newer")
    dataset = load_dataset(graph, options.data, options.seed)
    if options.batch_size > dataset.n_train:
        raise UsageError(
            f"--batch-size {options.batch_size} is larger than the {dataset.n_train} training samples"
        )


def job_request(graph: Graph, root: Path, threads: int, opset: int = 18) -> dict[str, Any]:
    """What every export, verification and inference job reads (bakeoff.stages.export.shared.ExportJob)."""
    return {
        "spec": graph.spec.model_dump(mode="json"),
        "weights": str(root / "weights.npz"),
        "root": str(root),
        "data": str(root / "data.npz"),
        "threads": threads,
        "opset": opset,
    }


@dataclass
class Exporter:
    graph: Graph
    options: ExportOptions
    root: Path
    on_record: Callable[[Record], None]
    progress: Callable[[str], None]
    done: set[str] = field(default_factory=set)  # artifacts already exported and verified ok
    exported: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Worker requests and per-case results: scratch, kept out of the artifacts folder.
    jobs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bakeoff-export-")))

    def request(self) -> dict[str, Any]:
        return job_request(self.graph, self.root, self.options.threads, self.options.opset)

    def record(self, case: str, status: str, message: str, **metrics: Any) -> Record:
        artifact = ARTIFACTS.get(case)
        record = make_record(
            "export",
            case,
            status,
            framework=artifact.origin if artifact else None,
            message=message,
            metrics=metrics,
            settings=self.options.settings(),
        )
        self.on_record(record)
        return record

    def run(self) -> None:
        try:
            self._run()
        finally:
            shutil.rmtree(self.jobs, ignore_errors=True)

    def _run(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self._fit():
            return
        chosen = {*self.options.artifacts, "torch-twin"}  # the eager and compiled runtimes run the twin
        chosen |= {ARTIFACTS[a].source for a in chosen if ARTIFACTS[a].source}  # int8 and TFLite need theirs
        wanted = [a for a in ARTIFACTS if a in chosen and a not in self.done]
        for producer, derived in PASSES:
            names = [a for a in wanted if ARTIFACTS[a].producer == producer]
            if derived is not None:  # torch's own artifacts first; what it converts from Keras after Keras
                names = [a for a in names if bool(ARTIFACTS[a].source) == derived]
            if producer == "onnx2tf":
                self._onnx2tf(names)
            else:
                self._export(producer, names)
        self.verify()

    def _fit(self) -> bool:
        """Trains the torch twin once; a resumed run keeps the weights its artifacts were made from."""
        if (self.root / "weights.npz").exists() and (self.root / "data.npz").exists():
            return True
        dataset = load_dataset(self.graph, self.options.data, self.options.seed)
        o = self.options
        train = TrainOptions(
            epochs=o.epochs, batch_size=o.batch_size, lr=o.lr, seed=o.seed, threads=o.threads
        )
        self.progress(
            f"export: training the PyTorch twin ({o.epochs} epoch(s)) so artifacts carry trained weights"
        )
        request = prepare_training(self.graph, train, dataset, self.jobs / "fit")
        request.update(job="fit", framework="torch", trained=str(self.root / "weights.npz"))
        (result,) = run_workers([request], self.jobs / "fit", timeout=o.case_timeout)
        if not result.ok:
            self.record("fit", "failed", f"training before export failed: {result.error}")
            return False
        score = result.meta["val_acc"]  # accuracy, or -MSE for regression
        shown = (
            f"val acc {score:.4f}"
            if self.graph.spec.task.type == "classification"
            else f"val MSE {-score:.4g}"
        )
        self.record("fit", "ok", f"trained twin: {shown}", **result.meta)
        cal = [x[: o.calibration] for x in dataset.x_train]
        save_arrays(
            self.root / "data.npz",
            {
                "y_val": dataset.y_val,
                **{f"x_val/{i}": x for i, x in enumerate(dataset.x_val)},
                **{f"x_cal/{i}": x for i, x in enumerate(cal)},
            },
        )
        return True

    def _export(self, producer: str, names: list[str]) -> None:
        orphans = self._orphans(names)
        names = [n for n in names if n not in orphans]
        if not names:
            return
        reference = producer != "native" and not reference_path(self.root, producer).exists()
        cases = [REFERENCE, *names] if reference else names
        self.progress(f"export: {producer} worker for {', '.join(names)}")
        job = "quantize" if producer == "native" else "export"

        def on_case(case: str, result: WorkerResult) -> None:
            if case == REFERENCE:
                if not result.ok:
                    self.record(REFERENCE, "failed", f"{producer} reference outputs: {result.error}")
                return
            if not result.ok:
                self.record(case, "failed", f"export failed: {result.error}")
                self.progress(f"export: {case} failed: {result.error}")
            else:
                self.exported[case] = result.meta

        run_cases(
            {**self.request(), "job": job, "framework": producer},
            cases,
            self.jobs,
            case_timeout=self.options.case_timeout,
            on_case=on_case,
        )

    def _orphans(self, names: list[str]) -> list[str]:
        """Derived artifacts whose source failed (that failure is recorded): say why they are not made."""
        made = self.exported.keys() | self.done
        orphans = [
            n
            for n in names
            if ARTIFACTS[n].source and ARTIFACTS[n].producer != "keras" and ARTIFACTS[n].source not in made
        ]
        for name in orphans:
            self.record(
                name, "failed", f"not made: needs the {ARTIFACTS[name].source} artifact, which was not made"
            )
        return orphans

    def _onnx2tf(self, names: list[str]) -> None:
        """PyTorch -> ONNX -> TensorFlow: onnx2tf runs as a subprocess of its own virtualenv."""
        from bakeoff.stages.export.converters.onnx2tf_env import onnx_to_savedmodel

        orphans = self._orphans(names)
        for name in [n for n in names if n not in orphans]:
            source = path_of(self.root, ARTIFACTS[ARTIFACTS[name].source])
            self.progress(f"export: {name} with onnx2tf (its own environment)")

            def convert(path: Path, source: Path = source) -> None:
                onnx_to_savedmodel(source, path, timeout=self.options.case_timeout)

            try:
                self.exported[name] = timed_export(self.root, name, convert)
            except Exception as exc:  # one failing converter never ends the stage
                text = str(exc) if isinstance(exc, BakeoffError) else f"{type(exc).__name__}: {exc}"
                self.record(name, "failed", f"export failed: {text}")

    def verify(self) -> None:
        for name in list(self.exported):
            origin = ARTIFACTS[name].origin
            if not reference_path(self.root, origin).exists():
                self.record(
                    name,
                    "failed",
                    f"not verified: the {origin} twin's reference outputs are missing "
                    "(its reference case failed, see above)",
                    **self.exported.pop(name),
                )
        run_grouped(
            {**self.request(), "job": "verify"},
            list(self.exported),
            lambda name: RUNTIMES[ARTIFACTS[name].verify_with].worker,
            WORKERS,
            self.jobs,
            case_timeout=self.options.case_timeout,
            on_case=self._verdict,
            starting=lambda _worker, names: self.progress(f"export: verifying {', '.join(names)}"),
        )

    def _verdict(self, name: str, result: WorkerResult) -> None:
        export = self.exported[name]
        if not result.ok:
            self.record(name, "failed", f"verification failed: {result.error}", **export)
            return
        artifact = ARTIFACTS[name]
        status, gate, message = judge(artifact, result.meta)
        self.record(
            name,
            status,
            message,
            **{k: v for k, v in export.items() if k != "path"},
            verification=result.meta,
            gate=gate,
            precision=artifact.precision,
            format=artifact.format,
            how=artifact.how,
            verified_with=artifact.verify_with,
            path=str(Path(export["path"]).relative_to(self.root.parent)),
        )
        self.progress(f"export: {name} {status}: {message}")


def exported_ok(records: list[Record]) -> list[str]:
    """Artifacts whose latest export record is ok (a flagged int8 artifact is ok: it is measured too)."""
    latest = {r["case"]: r for r in records if r["stage"] == "export"}
    return [a for a in ARTIFACTS if a in latest and latest[a]["status"] == "ok"]
