"""Taxonomy refresh: migrations, stored-label migration + relabel queue, carried bundles, backfill,
champion/challenger promotion with rollback, and servers following the release."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from labeling import queue, refresh
from models.bundle import Bundle, load_bundle, migrate_bundle, write_manifest
from models.classifier import Classifier
from serving.app import create_app
from serving.backfill import backfill, pending_count
from switchboard.cli import app as cli
from switchboard.corpus import LabelledData, read_labelled
from switchboard.errors import BundleError, InputError, TaxonomyError
from switchboard.migration import Merge, Reassign, Rename, Split, TaxonomyMigration, build
from switchboard.settings import Settings
from switchboard.storage import Database
from switchboard.storage.tables import CaseRow, LabelRow, OutboxRow, PredictionRow, ReviewTaskRow
from switchboard.taxonomy import Taxonomy
from tests.test_labeling import MODEL, _ingest

DEMO = Path(__file__).resolve().parent.parent / "switchboard" / "demo"
MIGRATION = DEMO / "migration-2027.yaml"
runner = CliRunner()


def _tax(version: str, cats: list[dict[str, Any]], owner_map: dict[str, str], owners: tuple[str, ...] = ("a", "b")):  # type: ignore[no-untyped-def]
    return Taxonomy.from_dict(
        {
            "version": version,
            "owners": [{"id": o, "name": o} for o in owners],
            "categories": cats,
            "owner_map": owner_map,
        }
    )


OLD = _tax("v1", [{"id": c, "name": c} for c in ("x", "y", "z")], {"x": "a", "y": "a", "z": "b"})


# -- the migration file ----------------------------------------------------------------------------


def test_demo_migration_maps_renames_and_merges_and_queues_splits() -> None:
    m = TaxonomyMigration.load(MIGRATION)
    assert m.map_label("late_delivery") == "delivery_delay"
    assert m.map_label("refund_delay") == m.map_label("double_charge") == "billing_error"
    assert m.map_label("missing_items") == "missing_items"
    assert m.map_label("damaged_items") is None and m.relabel["damaged_items"] == ("damaged_packaging", "spoiled_food")
    assert m.diff.owner_changes == {
        "courier_conduct": ("delivery_ops", "field_quality"),
        "bad_substitution": ("fulfilment", "customer_care"),
    }
    assert m.needs_seed_examples == ["damaged_packaging", "spoiled_food", "eco_packaging"]
    assert m.diff.owners_added == ["field_quality"] and not m.owner_only


@pytest.mark.parametrize(
    ("new_cats", "owner_map", "ops", "message"),
    [
        (
            ["x", "y", "w"],
            {"x": "a", "y": "a", "w": "b"},
            [Rename(rename="q", to="w")],
            "operation 1 (rename): unknown category 'q' in taxonomy v1",
        ),
        (
            ["x", "y"],
            {"x": "a", "y": "a"},
            [],
            "category 'z' of taxonomy v1 is not a leaf of v2 and no operation maps it",
        ),
        (
            ["x", "y", "z", "n"],
            {"x": "a", "y": "a", "z": "b", "n": "b"},
            [],
            "new category 'n' of taxonomy v2 has no source",
        ),
        (
            ["x", "y", "z"],
            {"x": "a", "y": "a", "z": "a"},
            [],
            "category 'z' moves from owner 'b' to 'a' but the migration does not declare it",
        ),
        (
            ["x", "y", "z"],
            {"x": "a", "y": "a", "z": "b"},
            [Reassign(reassign="z", owner="a")],
            "reassign declares 'z' → 'a' but taxonomy v2 routes it to 'b'",
        ),
        (
            ["x", "w"],
            {"x": "a", "w": "b"},
            [Merge(merge=["y", "z"], into="w"), Split(split="y", into=["x", "w"])],
            "operation 2 (split): 'y' is already mapped by operation 1",
        ),
    ],
)
def test_bad_migrations_are_rejected_with_a_precise_message(
    new_cats: list[str], owner_map: dict[str, str], ops: list[Any], message: str
) -> None:
    new = _tax("v2", [{"id": c, "name": c} for c in new_cats], owner_map)
    with pytest.raises(TaxonomyError, match="rejected") as err:
        build(OLD, new, ops)
    assert message in str(err.value)


def test_a_reparent_cycle_is_rejected_before_anything_changes(tmp_path: Path) -> None:
    old = {
        "version": "v1",
        "owners": [{"id": "a", "name": "A"}],
        "categories": [
            {"id": "g", "name": "G"},
            {"id": "h", "name": "H", "parent": "g"},
            {"id": "x", "name": "X", "parent": "h"},
        ],
        "owner_map": {"g": "a"},
    }
    new = {**old, "version": "v2", "categories": [{"id": "g", "name": "G", "parent": "h"}, *old["categories"][1:]]}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump(
            {"from_taxonomy": "old.yaml", "to_taxonomy": "new.yaml", "operations": [{"reparent": "g", "parent": "h"}]}
        )
    )
    with pytest.raises(TaxonomyError, match=r"category parents form a cycle: g -> h -> g"):
        TaxonomyMigration.load(tmp_path / "m.yaml")
    result = runner.invoke(cli, ["taxonomy", "diff", str(tmp_path / "m.yaml")])
    assert result.exit_code == 2 and "cycle" in result.output


def test_diff_command_prints_every_change() -> None:
    result = runner.invoke(cli, ["taxonomy", "diff", str(MIGRATION)])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.stdout)
    assert diff["renamed"] == {"late_delivery": "delivery_delay"}
    assert diff["split"] == {"damaged_items": ["damaged_packaging", "spoiled_food"]}
    assert diff["owner_changes"]["courier_conduct"] == {"from": "delivery_ops", "to": "field_quality"}


# -- stored labels and the relabel queue --------------------------------------------------------------


def _label_everything(db: Database, taxonomy: Taxonomy) -> dict[str, str]:
    """Store five items, label four of them under the old taxonomy, leave one open task."""
    specs = [
        ("my parcel came two hours late", "late_delivery", "delivery_ops", 0.5, False),
        ("charged me twice", "double_charge", "payments", 0.5, False),
        ("the eggs were smashed", "damaged_items", "fulfilment", 0.5, False),
        ("the milk was sour", "damaged_items", "fulfilment", 0.5, False),
        ("app froze at checkout", "app_crash", "digital", 0.5, False),
    ]
    ingested = _ingest(db, specs, qa_rate=0.0, agreement_rate=0.0)
    for item, (_, category, *_rest) in zip(ingested[:4], specs[:4], strict=True):
        assert item.task_id is not None
        queue.submit(db, item.task_id, "ann", "label", taxonomy, category=category)
    return {spec[0]: item.feedback_id for spec, item in zip(specs, ingested, strict=True)}


def test_migrate_maps_labels_queues_splits_and_is_applied_once(db: Database, demo_taxonomy: Taxonomy) -> None:
    db.upgrade()
    ids = _label_everything(db, demo_taxonomy)
    rude = _ingest(db, [("the driver was rude", "courier_conduct", "delivery_ops", 0.99, True)], qa_rate=0.0)
    m = TaxonomyMigration.load(MIGRATION)
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(LabelRow))
    dry = refresh.plan(db, m, scorer=lambda texts: [{"damaged_items": 0.9 if "milk" in t else 0.2} for t in texts])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LabelRow)) == before  # a dry run writes nothing
    assert dict(dry.labels_mapped) == {("late_delivery", "delivery_delay"): 1, ("double_charge", "billing_error"): 1}
    assert [r.text for r in dry.relabel] == ["the milk was sour", "the eggs were smashed"]  # pre-sorted by score
    assert dict(dry.tasks_requeued) == {"low_confidence": 1}
    # open cases follow their items: four carried (one to the new owner of courier_conduct), two wait for relabel
    assert len(dry.cases_moved) == 4 and dry.cases_awaiting_relabel == 2
    assert dict(dry.cases_rerouted) == {("delivery_ops", "field_quality"): 1}

    done = refresh.apply(db, m, scorer=lambda texts: [{"damaged_items": 0.9 if "milk" in t else 0.2} for t in texts])
    assert done.summary() == dry.summary()
    new = m.new
    labelled = {fid: cat for fid, _, cat in queue.accepted_labels(db, new)}
    assert labelled == {
        ids["my parcel came two hours late"]: "delivery_delay",
        ids["charged me twice"]: "billing_error",
    }
    assert len(queue.accepted_labels(db, demo_taxonomy)) == 4  # old labels stay as history

    # relabel tasks are served (under the new version) while the old model still serves
    task = queue.next_task(db, "bob", demo_taxonomy)
    assert task is not None and task.reason == "relabel" and task.text == "the milk was sour"
    assert task.taxonomy_version == "demo-2027.1"
    assert [s_["category"] for s_ in task.suggestions] == ["damaged_packaging", "spoiled_food"]
    with pytest.raises(InputError, match=r"not a leaf category of taxonomy demo-2027\.1"):
        queue.submit(db, task.id, "bob", "label", demo_taxonomy, category="damaged_items")
    queue.submit(db, task.id, "bob", "label", demo_taxonomy, category="spoiled_food")
    with db.session() as s:
        moved = {c.feedback_id: (c.category, c.owner, c.taxonomy_version) for c in s.scalars(select(CaseRow))}
        rerouted = [
            (o.owner, o.payload["category"]) for o in s.scalars(select(OutboxRow)) if o.event_type == "case.rerouted"
        ]
    assert moved[rude[0].feedback_id] == ("courier_conduct", "field_quality", "demo-2027.1")
    assert moved[ids["charged me twice"]] == ("billing_error", "payments", "demo-2027.1")
    assert moved[ids["the milk was sour"]] == ("spoiled_food", "fulfilment", "demo-2027.1")  # after its relabel
    assert moved[ids["the eggs were smashed"]][2] == "demo-2026.1"  # still waiting for its relabel
    assert sorted(rerouted) == [
        ("delivery_ops", "courier_conduct"),
        ("field_quality", "courier_conduct"),
        ("fulfilment", "spoiled_food"),
    ]
    assert {c for _, _, c in queue.accepted_labels(db, new)} == {"delivery_delay", "billing_error", "spoiled_food"}
    with db.session() as s:
        statuses = dict(s.execute(select(ReviewTaskRow.status, func.count()).group_by(ReviewTaskRow.status)).all())
        requeued = s.scalars(
            select(ReviewTaskRow).where(
                ReviewTaskRow.taxonomy_version == new.version, ReviewTaskRow.reason == "low_confidence"
            )
        ).one()
    assert statuses["superseded"] == 1
    assert requeued.suggestions == [{"category": "app_crash", "owner": "digital", "confidence": 0.5}]

    again = refresh.apply(db, m)
    assert again.already_applied and not again.relabel
    assert len(queue.accepted_labels(db, new)) == 3


# -- carrying a bundle, backfill, promotion, rollback, following servers ---------------------------------


def _owner_only(tmp_path: Path) -> Path:
    """A reorganisation of the demo taxonomy: two categories change owner, one is renamed, two merge."""
    old = yaml.safe_load((DEMO / "taxonomy.yaml").read_text())
    new = dict(old, version="demo-2026.2")
    cats = [c for c in old["categories"] if c["id"] not in ("refund_delay", "double_charge")]
    cats = [dict(c, id="delivery_delay") if c["id"] == "late_delivery" else c for c in cats]
    cats.append({"id": "billing_error", "name": "Billing problem", "parent": "billing"})
    new["categories"] = cats
    new["owner_map"] = {**old["owner_map"], "courier_conduct": "customer_care", "app_crash": "customer_care"}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    ops = [
        {"rename": "late_delivery", "to": "delivery_delay"},
        {"merge": ["refund_delay", "double_charge"], "into": "billing_error"},
        {"reassign": "courier_conduct", "owner": "customer_care"},
        {"reassign": "app_crash", "owner": "customer_care"},
    ]
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump({"from_taxonomy": "old.yaml", "to_taxonomy": "new.yaml", "operations": ops})
    )
    return tmp_path / "m.yaml"


def test_a_reorganisation_needs_no_retraining(bundle_path: Path, tmp_path: Path) -> None:
    m = TaxonomyMigration.load(_owner_only(tmp_path))
    old = Classifier(load_bundle(bundle_path))
    carried = migrate_bundle(load_bundle(bundle_path), m, tmp_path / "carried")
    new = Classifier(load_bundle(carried.path))
    assert new.info.taxonomy_version == "demo-2026.2" and new.info.version.endswith("~demo-2026.2")
    texts = ["charged twice for one order", "the driver threw my bag", "the app keeps crashing", "late again"]
    p_old, p_new = old.score_clean(texts).probabilities, new.score_clean(texts).probabilities
    i = {c: k for k, c in enumerate(old.labels)}
    j = {c: k for k, c in enumerate(new.labels)}
    np.testing.assert_allclose(
        p_new[:, j["billing_error"]], p_old[:, i["refund_delay"]] + p_old[:, i["double_charge"]], atol=1e-6
    )
    np.testing.assert_allclose(p_new[:, j["delivery_delay"]], p_old[:, i["late_delivery"]], atol=1e-6)
    np.testing.assert_allclose(p_new.sum(axis=1), 1.0, atol=1e-5)
    for pred in new.predict(texts):
        assert {a.category for a in pred.alternatives} <= set(m.new.leaf_ids)
    owner_idx = new.owners.index("customer_care")
    cc = new.owner_probabilities(p_new)[:, owner_idx]
    np.testing.assert_allclose(
        cc,
        sum(p_old[:, i[c]] for c in ("courier_conduct", "app_crash", "support_unhelpful", "praise")),
        atol=1e-5,
    )


def test_a_split_cannot_be_carried(bundle_path: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="damaged_items split or retired"):
        migrate_bundle(load_bundle(bundle_path), TaxonomyMigration.load(MIGRATION), tmp_path / "nope")


def test_backfill_is_resumable_after_a_crash(db: Database, bundle_path: Path, tmp_path: Path) -> None:
    db.upgrade()
    _ingest(db, [(f"item {i} was late", "late_delivery", "delivery_ops", 0.9, True) for i in range(23)], qa_rate=0.0)
    carried = Classifier(
        migrate_bundle(load_bundle(bundle_path), TaxonomyMigration.load(_owner_only(tmp_path)), tmp_path / "c")
    )
    assert pending_count(db, "demo-2026.2") == 23

    def crash_after_two(n: int, seen: list[int] = []) -> None:  # noqa: B006 - state across calls on purpose
        seen.append(n)
        if len(seen) == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        backfill(db, carried, batch_size=5, on_batch=crash_after_two)
    assert pending_count(db, "demo-2026.2") == 13  # both committed batches survived
    progress: list[int] = []
    result = backfill(db, carried, batch_size=5, on_batch=progress.append)
    assert (result.classified, result.remaining, progress) == (13, 0, [5, 5, 3])
    with db.session() as s:
        rows = s.scalars(select(PredictionRow).where(PredictionRow.taxonomy_version == "demo-2026.2")).all()
    assert len(rows) == 23 and len({r.feedback_id for r in rows}) == 23  # each item exactly once
    assert {r.source for r in rows} == {"backfill"} and {r.model_version for r in rows} == {carried.info.version}
    assert pending_count(db, MODEL.taxonomy_version) == 0  # the live predictions keep their version


def _swapped(bundle: Bundle, out: Path, a: str, b: str) -> Bundle:
    """A deliberately broken challenger: two categories' outputs exchanged."""
    shutil.copytree(bundle.path, out)
    meta = bundle.metadata.model_copy(update={"output_map": {a: b, b: a}, "model_version": "swapped"})
    return write_manifest(out, list(bundle.labels), bundle.taxonomy, meta)


def test_gate_flags_per_class_regressions(bundle_path: Path, tmp_path: Path) -> None:
    from training.promotion import compare

    champion = load_bundle(bundle_path)
    data = read_labelled(DEMO / "feedback.csv", "text", "category", champion.taxonomy)
    same = compare(champion, champion, data)
    assert same.passed and all(c.delta == 0 for c in same.per_class)
    bad = compare(champion, _swapped(champion, tmp_path / "bad", "app_crash", "login_problem"), data, tolerance=0.02)
    assert not bad.passed and set(bad.regressions) == {"app_crash", "login_problem"}


def test_gate_compares_across_taxonomies_through_the_migration(bundle_path: Path, tmp_path: Path) -> None:
    from training.promotion import compare

    m = TaxonomyMigration.load(_owner_only(tmp_path))
    champion = load_bundle(bundle_path)
    challenger = migrate_bundle(champion, m, tmp_path / "carried")
    old = read_labelled(DEMO / "feedback.csv", "text", "category", m.old)
    data = LabelledData(old.texts, [m.map_label(c) or "" for c in old.labels])
    report = compare(champion, challenger, data, m)
    # the same network: only items where summing merged categories changes the arg-max can differ
    assert report.passed and abs(report.champion.accuracy - report.challenger.accuracy) <= 0.02
    with pytest.raises(TaxonomyError, match=r"give the migration from demo-2026\.1 to demo-2026\.2"):
        compare(champion, challenger, data)


def test_promote_rollback_and_the_following_server(trained: Any, tmp_path: Path) -> None:
    from training.promotion import CHALLENGER, promote, register_bundle, release, rollback
    from training.tracking import Tracker

    m = TaxonomyMigration.load(_owner_only(tmp_path))
    # a registry of its own, so the session's shared store is left alone
    settings = Settings(home=tmp_path / "home", watch_release_s=0.1, follow_release=True)
    tracker = Tracker(settings)
    name = settings.registry_model_name
    champion_v = register_bundle(settings, trained.bundle, "champion", "tests-base", {})
    carried = migrate_bundle(trained.bundle, m, tmp_path / "carried")
    version = register_bundle(settings, carried, CHALLENGER, "tests-carried", {"carried_by": "test"})
    run = tracker.client.get_run(tracker.client.get_model_version(name, version).run_id)
    assert run.data.tags["parent_model"] == f"{name}/{champion_v}"
    assert run.data.tags["taxonomy_version"] == "demo-2026.2"
    assert tracker.client.get_experiment(run.info.experiment_id).name == "tests-carried/demo-2026.2"

    release(settings, tracker, tracker.resolve_alias(name, "champion"))
    old = read_labelled(DEMO / "feedback.csv", "text", "category", m.old)
    data = LabelledData(old.texts, [m.map_label(c) or "" for c in old.labels])
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["model"]["taxonomy_version"] == "demo-2026.1"
        dry = promote(settings, data, m, dry_run=True)
        assert dry.passed and tracker.resolve_alias(name, "champion").version == champion_v
        report = promote(settings, data, m)
        assert report.passed and tracker.resolve_alias(name, "champion").version == version
        answer = _wait_for(client, "demo-2026.2")
        assert answer["model"]["version"] == carried.metadata.model_version
        assert answer["category"]["id"] in m.new.leaf_ids
        restored, demoted = rollback(settings)
        assert (restored.version, demoted.version) == (champion_v, version)
        assert _wait_for(client, "demo-2026.1")["model"]["version"] == trained.bundle.metadata.model_version


def _wait_for(client: TestClient, taxonomy_version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.post("/v1/classify", json={"text": "charged twice"}).json()
        if body["model"]["taxonomy_version"] == taxonomy_version:
            return body
        time.sleep(0.1)
    raise AssertionError(f"server never switched to {taxonomy_version}")


def test_migrate_command_dry_run_then_apply(trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path)
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    monkeypatch.setenv("SWITCHBOARD_BUNDLE_PATH", str(trained.bundle.path))
    db = Database(settings.database)
    db.upgrade()
    fids = [
        i.feedback_id for i in _ingest(db, [("crushed box", "damaged_items", "fulfilment", 0.4, False)], qa_rate=0.0)
    ]
    task = queue.next_task(db, "ann", load_bundle(trained.bundle.path).taxonomy)
    assert task is not None and task.feedback_id == fids[0]
    queue.submit(db, task.id, "ann", "label", load_bundle(trained.bundle.path).taxonomy, category="damaged_items")
    dry = runner.invoke(cli, ["taxonomy", "migrate", str(MIGRATION), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert '"relabel_tasks": 1' in dry.stdout and '"from": "damaged_items"' in dry.stdout
    assert "dry run: nothing was written" in dry.output
    assert refresh.plan(db, TaxonomyMigration.load(MIGRATION)).already_applied is False
    done = runner.invoke(cli, ["taxonomy", "migrate", str(MIGRATION)])
    assert done.exit_code == 0 and '"relabel_tasks": 1' in done.stdout
    again = runner.invoke(cli, ["taxonomy", "migrate", str(MIGRATION)])
    assert "already applied" in again.output
    db.dispose()


def test_holm_keeps_the_family_wise_error() -> None:
    from training.promotion import holm

    assert holm({"a": 0.001, "b": 0.02, "c": 0.04}, 0.05) == {"a", "b", "c"}
    assert holm({"a": 0.03, "b": 0.03}, 0.05) == set()  # 0.03 > 0.05 / 2: the step-down stops at once
    assert holm({f"c{i}": 0.02 for i in range(72)} | {"real": 0.0005}, 0.05) == {"real"}
