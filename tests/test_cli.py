"""The Typer commands, run in-process: real work, and one-line errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from switchboard.cli import app
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
    assert "database at revision 0002" in runner.invoke(app, ["db", "upgrade"]).stdout
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
