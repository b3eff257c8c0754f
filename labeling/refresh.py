"""Applying a taxonomy migration to the stored labels and review tasks (``switchboard taxonomy migrate``).

* Accepted labels of renamed, merged or retired-into categories are carried over automatically: a new label
  row under the new version (annotator ``migration:<from>-><to>``); the old rows stay as history.
* Items labelled with a split (or retired-without-target) category become ``relabel`` tasks under the new
  version, pre-sorted by the current model's scores and offering the split's targets as suggestions.
* Open tasks made under the old version are marked ``superseded`` and re-queued under the new one with their
  suggestions mapped.
* Open cases follow their item: the mapped category, under the new version, with the owner the new map gives
  it (both owners are told when that changes); cases of split items move when their relabel task is answered.
* New categories nothing maps into are listed as needing seed examples.

``plan`` computes all of it without writing; ``apply`` writes it in one transaction and records the
migration, so applying it twice changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountability.cases import CLOSED, reroute
from switchboard.errors import ConflictError, NotFoundError
from switchboard.migration import TaxonomyMigration
from switchboard.storage import Database
from switchboard.storage.tables import (
    CaseRow,
    FeedbackRow,
    LabelRow,
    PredictionRow,
    ReviewTaskRow,
    TaxonomyMigrationRow,
    TaxonomyRow,
)
from switchboard.taxonomy import Taxonomy

Scorer = Callable[[list[str]], list[dict[str, float]]]
"""Texts → the current model's probability per (old) category, one mapping per text."""

RELABEL_BASE_PRIORITY = 1.0


@dataclass(frozen=True)
class RelabelItem:
    feedback_id: str
    old_category: str
    candidates: tuple[str, ...]
    priority: float
    text: str


@dataclass
class MigrationPlan:
    """What ``apply`` changes (or changed)."""

    from_version: str
    to_version: str
    already_applied: bool = False
    labels_mapped: Counter[tuple[str, str]] = field(default_factory=Counter)
    relabel: list[RelabelItem] = field(default_factory=list)
    tasks_requeued: Counter[str] = field(default_factory=Counter)
    needs_seed_examples: list[str] = field(default_factory=list)
    carried: list[tuple[str, str]] = field(default_factory=list, repr=False)  # (feedback id, new category)
    cases_moved: list[tuple[str, str, str]] = field(default_factory=list, repr=False)  # (feedback, category, owner)
    cases_rerouted: Counter[tuple[str, str]] = field(default_factory=Counter)
    cases_awaiting_relabel: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "from": self.from_version,
            "to": self.to_version,
            "already_applied": self.already_applied,
            "labels_mapped": sum(self.labels_mapped.values()),
            "labels_mapped_by_category": {f"{a} -> {b}": n for (a, b), n in sorted(self.labels_mapped.items())},
            "relabel_tasks": len(self.relabel),
            "relabel_by_category": dict(Counter(r.old_category for r in self.relabel)),
            "open_tasks_requeued": dict(self.tasks_requeued),
            "open_cases_carried": len(self.cases_moved),
            "open_cases_to_another_owner": {f"{a} -> {b}": n for (a, b), n in sorted(self.cases_rerouted.items())},
            "open_cases_awaiting_relabel": self.cases_awaiting_relabel,
            "needs_seed_examples": self.needs_seed_examples,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def store_taxonomy(session: Session, taxonomy: Taxonomy) -> None:
    """Remember a taxonomy version (idempotent; a different document under a known version is refused)."""
    row = session.get(TaxonomyRow, taxonomy.version)
    document = taxonomy.to_yaml()
    if row is None:
        session.add(TaxonomyRow(version=taxonomy.version, document=document, created_at=_now()))
    elif Taxonomy.from_yaml(row.document) != taxonomy:
        raise ConflictError(f"taxonomy version {taxonomy.version} is already stored with different content")


def stored_taxonomy(session: Session, version: str) -> Taxonomy:
    """A taxonomy version stored by ``apply``; ``NotFoundError`` when unknown."""
    row = session.get(TaxonomyRow, version)
    if row is None:
        raise NotFoundError(f"taxonomy version {version} is not stored here (apply its migration first)")
    return Taxonomy.from_yaml(row.document, source=f"stored taxonomy {version}")


def load_taxonomy(db: Database, version: str) -> Taxonomy:
    with db.session() as s:
        return stored_taxonomy(s, version)


def accepted_in(session: Session, version: str) -> list[tuple[str, str, str]]:
    """(feedback id, text, category) of the newest label per item under ``version``."""
    rows = session.execute(
        select(LabelRow.feedback_id, FeedbackRow.text, LabelRow.category)
        .join(FeedbackRow, FeedbackRow.id == LabelRow.feedback_id)
        .where(LabelRow.action == "label", LabelRow.taxonomy_version == version)
        .order_by(LabelRow.id)
    ).all()
    latest: dict[str, tuple[str, str, str]] = {}
    for fid, text, category in rows:
        if category is not None:
            latest[fid] = (fid, text, category)
    return list(latest.values())


def _map_suggestions(migration: TaxonomyMigration, suggestions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Old-version suggestions in new ids; a split category offers each of its targets."""
    out: dict[str, dict[str, Any]] = {}
    for s in suggestions:
        cat = s.get("category")
        if not isinstance(cat, str) or cat not in migration.old.leaf_owner:
            continue
        target = migration.map_label(cat)
        options = [target] if target else list(migration.relabel[cat])
        share = float(s.get("confidence") or 0.0) / len(options)
        for new_cat in options:
            prev = out.get(new_cat)
            conf = share + (prev["confidence"] if prev else 0.0)
            out[new_cat] = {"category": new_cat, "owner": migration.new.leaf_owner[new_cat], "confidence": conf}
    return sorted(out.values(), key=lambda x: -float(x["confidence"]))


def plan(db: Database, migration: TaxonomyMigration, scorer: Scorer | None = None) -> MigrationPlan:
    """Everything the migration would change in storage; nothing is written."""
    with db.session() as s:
        return _plan(s, migration, scorer)


def _plan(s: Session, migration: TaxonomyMigration, scorer: Scorer | None) -> MigrationPlan:
    old, new = migration.old, migration.new
    result = MigrationPlan(old.version, new.version, needs_seed_examples=migration.needs_seed_examples)
    done = s.scalars(
        select(TaxonomyMigrationRow).where(
            TaxonomyMigrationRow.from_version == old.version, TaxonomyMigrationRow.to_version == new.version
        )
    ).first()
    if done is not None:
        result.already_applied = True
        return result
    pending: list[tuple[str, str, str]] = []
    for fid, text, category in accepted_in(s, old.version):
        if category not in old.leaf_owner:
            continue
        target = migration.map_label(category)
        if target is None:
            pending.append((fid, text, category))
        else:
            result.labels_mapped[(category, target)] += 1
            result.carried.append((fid, target))
    scores = scorer([text for _, text, _ in pending]) if scorer and pending else [{} for _ in pending]
    for (fid, text, category), score in zip(pending, scores, strict=True):
        # items the current model places firmly in the old category come first: they are surely in scope
        priority = RELABEL_BASE_PRIORITY + float(score.get(category, 0.0))
        result.relabel.append(RelabelItem(fid, category, migration.relabel[category], round(priority, 6), text))
    result.relabel.sort(key=lambda r: (-r.priority, r.feedback_id))
    for (reason,) in s.execute(
        select(ReviewTaskRow.reason).where(
            ReviewTaskRow.status == "open", ReviewTaskRow.taxonomy_version == old.version
        )
    ).all():
        result.tasks_requeued[reason] += 1
    # open cases follow their item: mapped category, and the owner the new map gives it
    for fid, category, owner in s.execute(
        select(CaseRow.feedback_id, CaseRow.category, CaseRow.owner).where(
            CaseRow.taxonomy_version == old.version, CaseRow.status.not_in(CLOSED)
        )
    ).all():
        target = migration.map_label(category) if category in old.leaf_owner else None
        if target is None:
            result.cases_awaiting_relabel += 1
            continue
        result.cases_moved.append((fid, target, new.leaf_owner[target]))
        if new.leaf_owner[target] != owner:
            result.cases_rerouted[(owner, new.leaf_owner[target])] += 1
    return result


def apply(db: Database, migration: TaxonomyMigration, scorer: Scorer | None = None) -> MigrationPlan:
    """Carry labels over, queue relabel tasks, re-queue open tasks and record the migration — atomically."""
    old, new = migration.old, migration.new
    now = _now()
    tag = f"migration:{old.version}->{new.version}"
    with db.session() as s:
        result = _plan(s, migration, scorer)
        if result.already_applied:
            return result
        store_taxonomy(s, old)
        store_taxonomy(s, new)
        s.add_all(
            LabelRow(
                feedback_id=fid,
                annotator=tag,
                action="label",
                category=target,
                owner=new.leaf_owner[target],
                taxonomy_version=new.version,
                created_at=now,
            )
            for fid, target in result.carried
        )
        for item in result.relabel:
            s.add(
                ReviewTaskRow(
                    feedback_id=item.feedback_id,
                    reason="relabel",
                    priority=item.priority,
                    status="open",
                    taxonomy_version=new.version,
                    labels_required=1,
                    suggestions=[
                        {"category": c, "owner": new.leaf_owner[c], "confidence": 0.0} for c in item.candidates
                    ],
                    created_at=now,
                )
            )
        for fid, target, owner in result.cases_moved:
            reroute(s, fid, owner, target, actor=tag, taxonomy_version=new.version, notify_same_owner=False)
        old_tasks = s.scalars(
            select(ReviewTaskRow).where(ReviewTaskRow.status == "open", ReviewTaskRow.taxonomy_version == old.version)
        ).all()
        for task in old_tasks:
            pred = s.get(PredictionRow, task.prediction_id) if task.prediction_id else None
            source = task.suggestions if task.suggestions is not None else (pred.alternatives if pred else [])
            task.status, task.completed_at = "superseded", now
            s.add(
                ReviewTaskRow(
                    feedback_id=task.feedback_id,
                    prediction_id=task.prediction_id,
                    reason=task.reason,
                    priority=task.priority,
                    status="open",
                    taxonomy_version=new.version,
                    labels_required=task.labels_required,
                    suggestions=_map_suggestions(migration, source),
                    created_at=now,
                )
            )
        s.add(
            TaxonomyMigrationRow(
                from_version=old.version, to_version=new.version, summary=result.summary(), applied_at=now
            )
        )
    return result
