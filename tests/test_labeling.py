"""The review queue (domain, on SQLite and PostgreSQL) and its HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labeling import queue
from models.bundle import load_bundle, write_manifest
from serving.app import create_app
from switchboard.deferral import DeferralPolicy, FieldPolicy, Routing
from switchboard.errors import ConflictError, InputError, NotFoundError, StaleTaskError
from switchboard.schemas import Alternative, ModelInfo, Prediction, ScoredCategory, ScoredOwner
from switchboard.settings import Settings
from switchboard.storage import Database
from switchboard.taxonomy import Taxonomy
from switchboard.text import CleanText

MODEL = ModelInfo(name="m", version="1", taxonomy_version="demo-2026.1")


def _pred(category: str, owner: str, conf: float, auto: bool) -> Prediction:
    decision = "auto" if auto else "review"
    return Prediction(
        category=ScoredCategory(id=category, name=category, confidence=conf),
        owner=ScoredOwner(id=owner, name=owner, confidence=conf),
        alternatives=[Alternative(category=category, owner=owner, confidence=conf)],
        truncated=False,
        routing=Routing(category=decision, owner=decision, auto_routed=auto),  # type: ignore[arg-type]
    )


def _ingest(db: Database, specs: list[tuple[str, str, str, float, bool]], **policy: float) -> list[queue.Ingested]:
    items = [(CleanText(text, False), None, "survey") for text, *_ in specs]
    preds = [_pred(c, o, conf, auto) for _, c, o, conf, auto in specs]
    return queue.ingest(db, MODEL, items, preds, queue.QueuePolicy(seed=1, **policy))  # type: ignore[arg-type]


def test_review_items_are_queued_by_expected_value(db: Database, demo_taxonomy: Taxonomy) -> None:
    db.upgrade()
    got = _ingest(
        db,
        [
            ("sure thing", "app_crash", "digital", 0.99, True),
            ("hmm maybe", "refund_delay", "payments", 0.6, False),
            ("no idea", "login_problem", "digital", 0.3, False),
        ],
        qa_rate=0.0,
        agreement_rate=0.0,
    )
    assert got[0].task_id is None and got[1].reason == got[2].reason == "low_confidence"
    first = queue.next_task(db, "ann", demo_taxonomy)
    assert first is not None and first.text == "no idea"  # most uncertain first
    assert first.suggestions[0]["category"] == "login_problem"
    second = queue.next_task(db, "bob", demo_taxonomy)
    assert second is not None and second.text == "hmm maybe"  # ann's task is leased
    assert queue.next_task(db, "cy", demo_taxonomy) is None


def test_qa_sample_and_double_annotation(db: Database, demo_taxonomy: Taxonomy) -> None:
    db.upgrade()
    got = _ingest(db, [("fine", "app_crash", "digital", 0.99, True)], qa_rate=1.0, agreement_rate=1.0)
    assert got[0].reason == "qa_sample"
    task_id = got[0].task_id
    assert task_id is not None
    for annotator in ("ann", "bob"):
        t = queue.next_task(db, annotator, demo_taxonomy)
        assert t is not None and t.id == task_id and t.labels_required == 2
    assert queue.submit(db, task_id, "ann", "label", demo_taxonomy, category="app_crash").status == "open"
    with pytest.raises(ConflictError, match="ann already answered"):
        queue.submit(db, task_id, "ann", "label", demo_taxonomy, category="app_crash")
    assert queue.submit(db, task_id, "bob", "label", demo_taxonomy, category="login_problem").status == "done"
    with pytest.raises(ConflictError, match=r"already completed \(by ann, bob\)"):
        queue.submit(db, task_id, "cy", "label", demo_taxonomy, category="app_crash")
    agreement = queue.agreement(db)
    assert agreement.items == 1 and agreement.observed == 0.0


def test_bad_answers_are_refused_and_lose_nothing(db: Database, demo_taxonomy: Taxonomy) -> None:
    db.upgrade()
    task_id = _ingest(db, [("x", "app_crash", "digital", 0.2, False)], agreement_rate=0.0)[0].task_id
    assert task_id is not None
    with pytest.raises(InputError, match=r"'teleport' is not a leaf category of taxonomy demo-2026\.1"):
        queue.submit(db, task_id, "ann", "label", demo_taxonomy, category="teleport")
    with pytest.raises(InputError, match="owner 'nobody'"):
        queue.submit(db, task_id, "ann", "label", demo_taxonomy, category="app_crash", owner="nobody")
    with pytest.raises(NotFoundError, match="no review task 999"):
        queue.submit(db, 999, "ann", "label", demo_taxonomy, category="app_crash")
    newer = demo_taxonomy.model_copy(update={"version": "demo-2027.1"})
    with pytest.raises(StaleTaskError, match=r"made under taxonomy demo-2026\.1; demo-2027\.1 is in force"):
        queue.submit(db, task_id, "ann", "label", newer, category="app_crash")
    queue.submit(db, task_id, "ann", "skip", demo_taxonomy)
    assert (
        queue.submit(db, task_id, "ann", "label", demo_taxonomy, category="login_problem", owner="customer_care").status
        == "done"
    )
    assert queue.accepted_labels(db, demo_taxonomy)[0][2] == "login_problem"
    assert queue.stats(db)["done"] == 1


def test_cohen_kappa() -> None:
    assert queue.cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    # observed 0.5, expected 0.5 → kappa 0
    assert queue.cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == 0.0
    assert queue.cohen_kappa([], []) is None


@pytest.fixture
def review_client(bundle_copy: Path, tmp_path: Path) -> Iterator[TestClient]:
    """A server whose policy sends everything to review."""
    bundle = load_bundle(bundle_copy)
    strict = DeferralPolicy(
        category=FieldPolicy(threshold=1.0, min_margin=1.0), owner=FieldPolicy(threshold=1.0, min_margin=1.0)
    )
    write_manifest(
        bundle.path, list(bundle.labels), bundle.taxonomy, bundle.metadata.model_copy(update={"deferral": strict})
    )
    settings = Settings(bundle_path=bundle_copy, home=tmp_path, agreement_rate=0.0, qa_sample_rate=0.0)
    with TestClient(create_app(settings)) as client:
        yield client


def test_feedback_to_review_over_http(review_client: TestClient) -> None:
    c = review_client
    r = c.post(
        "/v1/feedback",
        json={
            "items": [{"text": "charged twice", "id": "a"}, {"text": "  "}, {"text": "app crashed", "channel": "chat"}]
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["index"] for x in body["results"]] == [0, 2]
    assert all(x["routing"]["auto_routed"] is False and x["review_task_id"] for x in body["results"])
    assert body["errors"][0]["index"] == 1
    task = c.get("/v1/review/next", params={"annotator": "ann"}).json()
    assert task["text"] in {"charged twice", "app crashed"} and len(task["suggestions"]) == 3
    bad = c.post(f"/v1/review/tasks/{task['id']}", json={"annotator": "ann", "action": "label", "category": "nope"})
    assert bad.status_code == 422 and "not a leaf category" in bad.json()["detail"]
    ok = c.post(
        f"/v1/review/tasks/{task['id']}",
        json={"annotator": "ann", "action": "label", "category": "double_charge", "owner": "customer_care"},
    )
    assert ok.json() == {"task_id": task["id"], "status": "done"}
    again = c.post(f"/v1/review/tasks/{task['id']}", json={"annotator": "bob", "action": "none_of_these"})
    assert again.status_code == 409 and "already completed (by ann)" in again.json()["detail"]
    assert c.get("/v1/review/stats").json()["done"] == 1
    c.post(
        f"/v1/review/tasks/{c.get('/v1/review/next', params={'annotator': 'ann'}).json()['id']}",
        json={"annotator": "ann", "action": "none_of_these"},
    )
    assert c.get("/v1/review/next", params={"annotator": "ann"}).status_code == 204
    assert c.get("/v1/review/agreement").json()["items"] == 0
    assert c.get("/v1/review/taxonomy").json()["version"] == "demo-2026.1"
    assert "Switchboard review" in c.get("/review").text


def test_label_issues_are_found_and_queued(db: Database, bundle_path: Path, tmp_path: Path) -> None:
    from labeling.export import export_labels
    from labeling.quality import find_label_issues, queue_label_issues
    from models.classifier import Classifier
    from switchboard.corpus import read_labelled
    from tests.conftest import DEMO_DATA

    clf = Classifier(load_bundle(bundle_path))
    data = read_labelled(DEMO_DATA, "text", "category", clf.bundle.taxonomy)
    flipped = list(data.labels)
    for i in range(0, 40, 4):  # corrupt every 4th of the first 40 labels
        flipped[i] = "app_crash" if flipped[i] != "app_crash" else "refund_delay"
    issues = find_label_issues(clf, data.texts, flipped)
    found = {i.index for i in issues}
    corrupted = set(range(0, 40, 4))
    assert len(found & corrupted) >= 5  # most corrupted labels are caught
    assert all(flipped[i.index] == i.given for i in issues)

    db.upgrade()
    taxonomy = clf.bundle.taxonomy
    model = ModelInfo(name="m", version="1", taxonomy_version=taxonomy.version)
    items = [(CleanText(t, False), None, None) for t in data.texts[:40]]
    ingested = queue.ingest(
        db, model, items, clf.predict(data.texts[:40]), queue.QueuePolicy(qa_rate=1.0, agreement_rate=0.0, seed=0)
    )
    for ing, label in zip(ingested, flipped[:40], strict=True):
        if ing.task_id is not None:
            queue.submit(db, ing.task_id, "ann", "label", taxonomy, category=label)
    issues, task_ids = queue_label_issues(db, clf)
    assert task_ids and len(task_ids) == len(issues)
    assert queue.stats(db)["open_label_issue"] == len(task_ids)
    assert queue_label_issues(db, clf)[1] == []  # already queued: not queued twice
    out = tmp_path / "labels.parquet"
    assert export_labels(db, taxonomy, out) == 40
    exported = read_labelled(out, "text", "label", taxonomy)
    assert sorted(zip(exported.texts, exported.labels, strict=True)) == sorted(
        zip(data.texts[:40], flipped[:40], strict=True)
    )
