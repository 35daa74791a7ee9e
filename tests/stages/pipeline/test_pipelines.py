"""The input-pipeline bake-off, through real torch and TensorFlow worker processes, kept small."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bakeoff.stages.pipeline import pipelines, shared
from bakeoff.stages.pipeline.pipelines import reference_augment
from bakeoff.stages.pipeline.shared import Augment

pytestmark = pytest.mark.slow

BATCH, BATCHES, EPOCHS = 32, 10, 2


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = pipelines.run_pipelines(
        tmp_path_factory.mktemp("pipelines"), batch=BATCH, batches=BATCHES, epochs=EPOCHS, workers=(0, 1)
    )
    return {r["case"]: r for r in out}


def test_every_case_finishes_with_a_throughput(records: dict[str, dict[str, Any]]) -> None:
    cases = {"dataloader/workers=0", "dataloader/workers=1", *(c["name"] for c in pipelines.keras_cases())}
    assert set(records) == {*cases, shared.PARITY_CASE}
    for name in cases:
        record = records[name]
        assert record["status"] == "ok", (name, record["message"])
        metrics = record["metrics"]
        assert metrics["samples_per_s"] > 0
        assert metrics["first_batch_s"] > metrics["build_s"] > 0
        assert len(metrics["raw"]["samples_per_s"]) == EPOCHS
        # The first batch of every pass is start-up, never a throughput sample.
        assert len(metrics["raw"]["batch_s"]) == EPOCHS * (BATCHES - 1)
        assert len(metrics["raw"]["first_batch_s"]) == EPOCHS + 1
        assert metrics["augment_varies_per_epoch"]
        assert metrics["peak_rss_mb"] > 0
        assert record["settings"]["batch"] == BATCH


def test_batches_come_out_in_each_frameworks_layout(records: dict[str, dict[str, Any]]) -> None:
    torch_layout = records["dataloader/workers=1"]["metrics"]["layout"]
    keras_layout = records["tf.data/autotune+cache"]["metrics"]["layout"]
    assert torch_layout["images"] == [[BATCH, 1, 28, 28], "float32"]
    assert keras_layout["images"] == [[BATCH, 28, 28, 1], "float32"]
    assert torch_layout["labels"] == keras_layout["labels"] == [[BATCH], "int64"]


def test_both_frameworks_augment_exactly_alike(records: dict[str, dict[str, Any]]) -> None:
    record = records[shared.PARITY_CASE]
    assert record["status"] == "ok", record["message"]
    metrics = record["metrics"]
    assert metrics["images"] == shared.PROBE_IMAGES
    assert metrics["decoded_equal"] and metrics["labels_equal"]
    assert metrics["torch_vs_keras_max_abs"] == 0.0
    assert metrics["torch_vs_reference_max_abs"] == metrics["keras_vs_reference_max_abs"] == 0.0


def test_reference_augmentation_crops_flips_and_normalizes() -> None:
    aug = Augment()
    image = np.zeros((28, 28), dtype=np.uint8)
    image[0, 0] = 255
    # Offset (2, 2) is the centre crop: the corner pixel stays put; a flip moves it to the right edge.
    centre = reference_augment(image, 2, 2, False, aug)
    assert centre.dtype == np.float32 and centre.shape == (28, 28)
    assert centre[0, 0] == pytest.approx((1.0 - aug.mean) / aug.std)
    assert centre[0, 1] == pytest.approx(-aug.mean / aug.std)
    assert reference_augment(image, 2, 2, True, aug)[0, 27] == centre[0, 0]
    # Offset (0, 0) shifts the image 2 px down and right, into the zero padding.
    assert reference_augment(image, 0, 0, False, aug)[2, 2] == centre[0, 0]


def test_a_failing_worker_fails_only_its_own_cases(tmp_path: Path) -> None:
    requests = pipelines.prepare(tmp_path, batch=8, batches=3, epochs=1, workers=(0,))
    torch_request, keras_request = requests
    torch_request["variants"].append({"name": "dataloader/workers=-1", "num_workers": -1})
    keras_request["data"] = str(tmp_path / "missing.npz")
    records = {r["case"]: r for r in pipelines.run_requests(requests, tmp_path, timeout=300)}

    assert records["dataloader/workers=0"]["status"] == "ok"
    # A bad case fails alone; the worker goes on with the rest.
    bad_case = records["dataloader/workers=-1"]
    assert bad_case["status"] == "failed" and "num_workers" in bad_case["message"]
    for case in pipelines.keras_cases():
        record = records[case["name"]]
        assert record["status"] == "failed"
        assert record["framework"] == "keras"
        assert "missing.npz" in record["message"]
    assert records[shared.PARITY_CASE]["status"] == "failed"
    assert "keras" in records[shared.PARITY_CASE]["message"]
