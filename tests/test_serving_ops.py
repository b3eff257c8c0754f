"""Operations around the classify endpoint: API keys and roles, metrics, limits, overload, hot reload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from switchboard.access import create_key
from switchboard.settings import Settings
from switchboard.storage import Database, sqlite_url

TEXT = {"text": "my parcel never arrived"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    url = sqlite_url(tmp_path_factory.mktemp("auth") / "sb.db")
    db = Database(url)
    db.upgrade()
    tokens = {role: create_key(db, f"{role}-key", role)[1] for role in ("service", "annotator", "admin")}
    db.dispose()
    return {"url": url, **tokens}


@pytest.fixture(scope="module")
def secured(bundle_path: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(Settings(bundle_path=bundle_path, auth_required=True, database_url=keys["url"]))
    with TestClient(app) as c:
        yield c


def test_classify_needs_a_key(secured: TestClient) -> None:
    r = secured.post("/v1/classify", json=TEXT)
    assert r.status_code == 401
    assert "missing API key" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = secured.post("/v1/classify", json=TEXT, headers={"X-API-Key": "sb_nope_nope"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid API key"


@pytest.mark.parametrize("role", ["service", "annotator", "admin"])
def test_every_role_may_classify(secured: TestClient, keys: dict[str, str], role: str) -> None:
    assert secured.post("/v1/classify", json=TEXT, headers={"X-API-Key": keys[role]}).status_code == 200
    bearer = {"Authorization": f"Bearer {keys[role]}"}
    assert secured.post("/v1/classify", json=TEXT, headers=bearer).status_code == 200


def test_only_admins_reload(secured: TestClient, keys: dict[str, str]) -> None:
    r = secured.post("/v1/admin/reload", json={}, headers={"X-API-Key": keys["service"]})
    assert r.status_code == 403
    assert "role 'service' may not admin" in r.json()["detail"]
    r = secured.post("/v1/admin/reload", json={}, headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200, r.text
    assert r.json()["taxonomy_version"] == "demo-2026.1"


def test_health_and_metrics_need_no_key(secured: TestClient) -> None:
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/metrics").status_code == 200


@pytest.fixture
def open_client(bundle_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(bundle_path=bundle_path, max_request_bytes=4096))
    with TestClient(app) as c:
        yield c


def test_metrics_describe_traffic_batches_and_model(open_client: TestClient) -> None:
    open_client.post("/v1/classify", json=TEXT)
    open_client.post("/v1/classify", json={"items": [TEXT, TEXT, {"text": " "}]})
    open_client.post("/v1/classify", json={"text": ""})
    body = open_client.get("/metrics").text
    assert 'switchboard_requests_total{method="POST",route="/v1/classify",status="200"} 2.0' in body
    assert 'switchboard_requests_total{method="POST",route="/v1/classify",status="422"} 1.0' in body
    assert 'switchboard_request_seconds_bucket{le="0.005",route="/v1/classify"}' in body
    assert "switchboard_inference_batch_items_sum 3.0" in body
    assert 'switchboard_model_info{name="tests-classifier"' in body
    assert "switchboard_item_errors_total 1.0" in body
    predicted = [line for line in body.splitlines() if line.startswith("switchboard_predictions_total{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in predicted) == 3.0
    assert "switchboard_queue_items 0.0" in body
    decisions = [
        line
        for line in body.splitlines()
        if line.startswith("switchboard_routing_decisions_total{") and 'field="owner"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in decisions) == 3.0


def test_oversized_body_is_refused_before_parsing(open_client: TestClient) -> None:
    r = open_client.post("/v1/classify", json={"text": "x" * 5000})
    assert r.status_code == 413
    assert r.json()["detail"] == "request body is larger than 4096 bytes"

    def stream() -> Iterator[bytes]:
        yield b'{"text": "'
        yield b"y" * 5000
        yield b'"}'

    r = open_client.post("/v1/classify", content=stream(), headers={"content-type": "application/json"})
    assert r.status_code == 413  # streamed without Content-Length: cut off while reading
    assert r.json()["detail"] == "request body is larger than 4096 bytes"


def test_full_queue_answers_503_with_retry_after(open_client: TestClient) -> None:
    batcher = open_client.app.state.batcher  # type: ignore[attr-defined]
    limit = batcher.max_queue_items
    batcher.max_queue_items = 0
    try:
        r = open_client.post("/v1/classify", json=TEXT)
    finally:
        batcher.max_queue_items = limit
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert "queue is full" in r.json()["detail"]
    assert "switchboard_overloaded_total 1.0" in open_client.get("/metrics").text


def test_reload_swaps_models_and_refuses_a_broken_bundle(open_client: TestClient, bundle_copy: Path) -> None:
    meta = json.loads((bundle_copy / "metadata.json").read_text())
    r = open_client.post("/v1/admin/reload", json={"bundle_path": str(bundle_copy)})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == meta["model_version"]
    (bundle_copy / "model.onnx").write_bytes(b"not a model")
    r = open_client.post("/v1/admin/reload", json={"bundle_path": str(bundle_copy)})
    assert r.status_code == 422
    assert "bundle refused, current model kept" in r.json()["detail"]
    assert open_client.post("/v1/classify", json=TEXT).status_code == 200


def test_settings_reject_a_queue_smaller_than_a_batch() -> None:
    from switchboard.errors import ConfigError
    from switchboard.settings import load_settings

    with pytest.raises(ConfigError, match=r"max_queue_items \(10\) must be at least max_batch_items \(256\)"):
        load_settings(max_queue_items=10)
