"""The Typer commands, run in-process: real work, and one-line errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from switchboard.cli import app
from switchboard.storage import head_revision
from tests.conftest import DEMO_DATA, tiny_config_dict

runner = CliRunner()


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(home))
    monkeypatch.setenv("SWITCHBOARD_REGISTRY_MODEL_NAME", "tests-classifier")
    return home


def test_classify_with_the_registry_champion(trained, env: Path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["classify", "I was charged twice", "the app crashed"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model"]["version"] == trained.bundle.metadata.model_version
    assert len(out["results"]) == 2 and out["results"][0]["category"]["id"]


def test_evaluate_writes_reports(bundle_path: Path, env: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--bundle",
            str(bundle_path),
            "--data",
            str(DEMO_DATA),
            "--label-column",
            "category",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
    assert (tmp_path / "r" / "report.json").is_file() and (tmp_path / "r" / "report.md").is_file()


def test_export_reexports_a_checkpoint(trained, env: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ckpt = Path(trained.bundle.path).parent / "checkpoint"
    result = runner.invoke(app, ["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--no-quantize"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["parity"]["fp32_top1_agreement"] == 1.0
    assert json.loads((tmp_path / "b" / "metadata.json").read_text())["quantization"] == "none"


def test_train_from_a_config_file(tiny_base_model: Path, env: Path, tmp_path: Path) -> None:
    raw = tiny_config_dict(tiny_base_model, tmp_path / "out", epochs=1)
    raw.update(experiment="cli", model_name="cli-classifier")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "registered cli-classifier v1 alias=champion" in result.stdout
    assert (tmp_path / "out" / "bundle" / "model.onnx").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--config", "/nonexistent.yaml"], "training config not found: /nonexistent.yaml"),
        (["classify", "hello", "--bundle", "/nonexistent"], "model bundle not found"),
        (["evaluate", "--data", "/x.csv", "--alias", "nope"], "no model version 'tests-classifier@nope'"),
        (["classify", "   ", "--alias", "champion"], "text is empty or only whitespace"),
    ],
)
def test_errors_are_one_line_and_exit_2(trained, env: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_key_management_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    assert f"database at revision {head_revision()}" in runner.invoke(app, ["db", "upgrade"]).stdout
    created = runner.invoke(app, ["keys", "create", "--name", "zendesk", "--role", "service"])
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["key"].startswith(f"sb_{key['id']}_") and key["role"] == "service"
    listed = json.loads(runner.invoke(app, ["keys", "list"]).stdout)
    assert listed[0]["id"] == key["id"] and "key" not in listed[0] and listed[0]["revoked_at"] is None
    assert f"revoked {key['id']}" in runner.invoke(app, ["keys", "revoke", key["id"]]).stdout
    assert json.loads(runner.invoke(app, ["keys", "list"]).stdout)[0]["revoked_at"]
    bad = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "root"])
    assert bad.exit_code == 2 and "unknown role 'root'" in bad.stderr
    missing = runner.invoke(app, ["keys", "revoke", "nope"])
    assert missing.exit_code == 2 and "no API key with id 'nope'" in missing.stderr


def test_thresholds_command_sweeps_and_applies(bundle_copy: Path, env: Path) -> None:
    result = runner.invoke(
        app,
        [
            "thresholds",
            "--bundle",
            str(bundle_copy),
            "--data",
            str(DEMO_DATA),
            "--label-column",
            "category",
            "--owner-target",
            "0.9",
            "--apply",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| owner threshold" in result.stdout and "coverage" in result.stdout
    meta = json.loads((bundle_copy / "metadata.json").read_text())
    assert meta["deferral"]["chosen_for"]["owner"] == 0.9


def test_review_commands_and_retrain_from_corrections(
    bundle_path: Path, tiny_base_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeling import queue
    from models.bundle import load_bundle
    from models.classifier import Classifier
    from switchboard.settings import Settings
    from switchboard.storage import Database
    from switchboard.text import CleanText

    home = tmp_path / "home"
    monkeypatch.setenv("SWITCHBOARD_HOME", str(home))
    monkeypatch.setenv("SWITCHBOARD_BUNDLE_PATH", str(bundle_path))
    empty = runner.invoke(app, ["review", "export", "--out", str(tmp_path / "c.csv")])
    assert empty.exit_code == 2 and "no accepted labels" in empty.stderr
    clf = Classifier(load_bundle(bundle_path))
    db = Database(Settings(home=home).database)
    db.upgrade()
    texts = ["the driver threw my bags", "refund never came", "app froze at payment", "charged me twice"]
    gold = ["courier_conduct", "refund_delay", "app_crash", "double_charge"]
    ingested = queue.ingest(
        db,
        clf.info,
        [(CleanText(t, False), None, None) for t in texts],
        clf.predict(texts),
        queue.QueuePolicy(qa_rate=1.0, agreement_rate=0.0, seed=0),
    )
    for ing, label in zip(ingested, gold, strict=True):
        if ing.task_id is not None:
            queue.submit(db, ing.task_id, "ann", "label", clf.bundle.taxonomy, category=label)
    exported = runner.invoke(app, ["review", "export", "--out", str(tmp_path / "c.csv"), "--label-column", "category"])
    assert exported.exit_code == 0, exported.output
    assert "wrote 4 labels (taxonomy demo-2026.1)" in exported.stdout
    issues = runner.invoke(app, ["review", "label-issues"])
    assert issues.exit_code == 0 and "likely label errors in the stored labels" in issues.stdout
    file_issues = runner.invoke(
        app, ["review", "label-issues", "--data", str(DEMO_DATA), "--label-column", "category", "--show", "2"]
    )
    assert file_issues.exit_code == 0 and f"rows of {DEMO_DATA}" in file_issues.stdout

    raw = tiny_config_dict(tiny_base_model, tmp_path / "out", epochs=1)
    raw.update(experiment="retrain", model_name="retrain-classifier")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "retrain",
            "--config",
            str(cfg),
            "--corrections",
            str(tmp_path / "c.csv"),
            "--test",
            str(DEMO_DATA),
            "--test-label-column",
            "category",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["n"] == 356 and report["before"]["model"] != report["after"]["model"]
    assert 0 <= report["after"]["accuracy"] <= 1 and report["after"]["registered_version"] == "1"
