"""Slow tests on the real all-MiniLM-L6-v2 and tests on the shared benchmark data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

needs_banking77 = pytest.mark.skipif(
    not (SHARED_DATA / "banking77" / "train.csv").is_file(),
    reason=f"benchmark data absent: {SHARED_DATA / 'banking77'} (it lives in ../shared/data beside the repo)",
)


@pytest.mark.slow
def test_demo_main_job_trains_registers_and_reuses_an_accurate_real_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`switchboard demo --no-serve` on the real encoder: the model `make demo` serves."""
    from typer.testing import CliRunner

    from models.bundle import load_bundle
    from models.classifier import Classifier
    from switchboard.cli import app
    from switchboard.settings import Settings
    from training.tracking import Tracker

    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--no-serve"])
    assert first.exit_code == 0, first.output
    assert "registered switchboard-classifier v1 alias=champion" in first.stdout
    second = runner.invoke(app, ["demo", "--no-serve"])
    assert "champion exists: switchboard-classifier v1; not retraining" in second.stdout

    tracker = Tracker(Settings(home=tmp_path))
    bundle = load_bundle(tracker.download_bundle(tracker.resolve_alias("switchboard-classifier", "champion")))
    assert bundle.metadata.metrics["validation_accuracy"] >= 0.8, bundle.metadata.metrics
    assert bundle.metadata.metrics["validation_owner_accuracy"] >= 0.85
    assert bundle.metadata.parity["int8_top1_agreement"] >= 0.97
    texts = ["I was charged twice for the same order", "the app crashes when I pay", "my order came hours late"]
    assert [p.owner.id for p in Classifier(bundle).predict(texts)] == ["payments", "digital", "delivery_ops"]


@pytest.mark.benchmark_data
@needs_banking77
def test_banking77_taxonomy_and_splits_load() -> None:
    from evaluation.benchmarks import banking77_dir, banking77_taxonomy
    from switchboard.corpus import read_labelled

    folder = banking77_dir()
    taxonomy = banking77_taxonomy(folder)
    assert len(taxonomy.leaf_ids) == 77
    assert len(taxonomy.owners) == 8
    test = read_labelled(folder / "test.csv", "text", "category", taxonomy)
    assert len(test) == 3080
    assert set(test.labels) == set(taxonomy.leaf_ids)
