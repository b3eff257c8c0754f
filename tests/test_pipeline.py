"""The whole training run on embedded defaults: MLflow run, registered version, champion alias."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.bundle import load_bundle
from switchboard.errors import BundleError, TrackingError
from training.tracking import Tracker


def test_run_is_tracked_in_mlflow(trained, settings) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker(settings)
    run = tracker.client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["taxonomy_version"] == "demo-2026.1"
    assert len(run.data.tags["data_version"]) == 16
    assert run.data.params["hyperparameters.epochs"] == "12"
    assert run.data.params["data.label_column"] == "category"
    history = tracker.client.get_metric_history(trained.run_id, "val_accuracy")
    assert [m.step for m in history] == list(range(1, 13))
    artifacts = {a.path for a in tracker.client.list_artifacts(trained.run_id, "bundle")}
    assert {
        "bundle/model.onnx",
        "bundle/metadata.json",
        "bundle/labels.json",
        "bundle/taxonomy.yaml",
        "bundle/tokenizer.json",
    } <= artifacts


def test_the_tiny_model_learns_the_demo_data(trained) -> None:  # type: ignore[no-untyped-def]
    # 10 balanced classes: chance is 0.10; a learning signal well above it proves the loop works
    assert trained.report is not None
    assert trained.report.scores.accuracy > 0.3
    assert trained.report.owner_accuracy >= trained.report.scores.accuracy - 1e-9


def test_registered_as_champion_and_downloadable(trained, settings) -> None:  # type: ignore[no-untyped-def]
    tracker = Tracker(settings)
    champion = tracker.resolve_alias("tests-classifier", "champion")
    assert champion.version == trained.registered.version
    local = tracker.download_bundle(champion)
    bundle = load_bundle(local)
    assert bundle.metadata.model_version == trained.bundle.metadata.model_version
    assert bundle.metadata.metrics["validation_accuracy"] == pytest.approx(trained.report.scores.accuracy)
    assert tracker.download_bundle(champion) == local  # cached
    with pytest.raises(TrackingError, match="no model version 'tests-classifier@nope'"):
        tracker.resolve_alias("tests-classifier", "nope")


def test_bundle_is_self_describing(bundle_path: Path) -> None:
    meta = json.loads((bundle_path / "metadata.json").read_text())
    assert meta["format_version"] == 1
    assert meta["quantization"] == "int8-dynamic"
    assert meta["taxonomy_version"] == "demo-2026.1"
    assert meta["num_labels"] == 11
    assert set(meta["files"]) == {"model.onnx", "tokenizer.json", "labels.json", "taxonomy.yaml"}
    assert meta["parity"]["fp32_max_prob_diff"] < 1e-4
    assert {"torch", "onnxruntime", "transformers"} <= set(meta["versions"])


def test_tampered_bundle_is_refused(bundle_copy: Path) -> None:
    with (bundle_copy / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match=r"model.onnx does not match its checksum"):
        load_bundle(bundle_copy)


def test_incomplete_bundle_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"missing tokenizer\.json"):
        load_bundle(bundle_copy)


def test_labels_outside_the_taxonomy_are_refused(bundle_copy: Path) -> None:
    labels = json.loads((bundle_copy / "labels.json").read_text())
    labels[0] = "teleportation"
    (bundle_copy / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(BundleError, match="teleportation"):
        load_bundle(bundle_copy, verify_checksums=False)


def test_unknown_format_version_is_refused(bundle_copy: Path) -> None:
    meta = json.loads((bundle_copy / "metadata.json").read_text())
    meta["format_version"] = 99
    (bundle_copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="format_version 99"):
        load_bundle(bundle_copy)
