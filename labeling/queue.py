"""The review queue: domain functions over storage (handlers stay thin, like argilla-server).

Items whose prediction the deferral policy sends to review become tasks, ordered by expected value of a
human look: uncertainty (1 - owner confidence, plus half of 1 - category confidence) and a bonus for rare or
new categories (few human labels so far). A random share of auto-routed items is also queued for quality
assurance, and a random share of tasks needs two annotators, which gives the agreement figure.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import func, or_, select

from accountability.cases import open_case, reroute
from labeling.refresh import accepted_in, stored_taxonomy
from switchboard.errors import ConflictError, InputError, NotFoundError, StaleTaskError
from switchboard.schemas import ModelInfo, Prediction
from switchboard.storage import Database
from switchboard.storage.tables import FeedbackRow, LabelRow, PredictionRow, ReviewTaskRow
from switchboard.taxonomy import Taxonomy
from switchboard.text import CleanText

Reason = Literal["low_confidence", "qa_sample", "label_issue", "relabel"]
Action = Literal["label", "none_of_these", "skip"]
LEASE = timedelta(minutes=10)
RARE_LABELS = 5  # categories with fewer human labels than this get the rarity bonus
RARITY_BONUS = 0.5
QA_PRIORITY = 0.05


@dataclass(frozen=True)
class QueuePolicy:
    qa_rate: float = 0.02
    agreement_rate: float = 0.1
    seed: int | None = None


@dataclass(frozen=True)
class Ingested:
    feedback_id: str
    task_id: int | None
    reason: Reason | None


@dataclass(frozen=True)
class TaskView:
    id: int
    feedback_id: str
    text: str
    channel: str | None
    reason: str
    priority: float
    taxonomy_version: str
    labels_required: int
    suggestions: list[dict[str, object]]
    predicted_owner: str | None


@dataclass(frozen=True)
class Agreement:
    items: int
    observed: float
    kappa: float | None


def _now() -> datetime:
    return datetime.now(UTC)


def _rare(session: object, categories: set[str]) -> set[str]:
    counts = dict(
        session.execute(  # type: ignore[attr-defined]
            select(LabelRow.category, func.count())
            .where(LabelRow.action == "label", LabelRow.category.in_(categories))
            .group_by(LabelRow.category)
        ).all()
    )
    return {c for c in categories if counts.get(c, 0) < RARE_LABELS}


def priority_of(prediction: Prediction, rare: bool) -> float:
    uncertainty = (1 - prediction.owner.confidence) + 0.5 * (1 - prediction.category.confidence)
    return round(uncertainty + (RARITY_BONUS if rare else 0.0), 6)


def ingest(
    db: Database,
    model: ModelInfo,
    items: Sequence[tuple[CleanText, str | None, str | None]],
    predictions: Sequence[Prediction],
    policy: QueuePolicy = QueuePolicy(),
) -> list[Ingested]:
    """Store feedback and predictions, open a case for each item's owner (notified through the outbox), and
    queue what the deferral policy sends to review, plus QA samples."""
    rng = random.Random(policy.seed)
    now = _now()
    out: list[Ingested] = []
    with db.session() as s:
        rare = _rare(s, {p.category.id for p in predictions})
        for (clean, external_id, channel), pred in zip(items, predictions, strict=True):
            fb = FeedbackRow(
                id=uuid.uuid4().hex,
                external_id=external_id,
                text=clean.text,
                channel=channel,
                truncated=pred.truncated,
                received_at=now,
            )
            row = PredictionRow.of(fb.id, model, pred, now)
            s.add_all([fb, row])
            s.flush()
            open_case(s, fb, pred.owner.id, pred.category.id, model.taxonomy_version, now)
            reason: Reason | None = None
            if pred.routing.category == "review" or pred.routing.owner == "review":
                reason, priority = "low_confidence", priority_of(pred, pred.category.id in rare)
            elif rng.random() < policy.qa_rate:
                reason, priority = "qa_sample", QA_PRIORITY
            task_id = None
            if reason is not None:
                task = ReviewTaskRow(
                    feedback_id=fb.id,
                    prediction_id=row.id,
                    reason=reason,
                    priority=priority,
                    status="open",
                    taxonomy_version=model.taxonomy_version,
                    labels_required=2 if rng.random() < policy.agreement_rate else 1,
                    created_at=now,
                )
                s.add(task)
                s.flush()
                task_id = task.id
            out.append(Ingested(fb.id, task_id, reason))
    return out


def queue_existing(
    db: Database, feedback_ids: Sequence[str], reason: Reason, taxonomy_version: str, priority: float = 1.0
) -> list[int]:
    """Queue stored items again (e.g. likely label errors); items with an open task are left alone."""
    created = []
    with db.session() as s:
        open_ids = set(
            s.scalars(
                select(ReviewTaskRow.feedback_id).where(
                    ReviewTaskRow.feedback_id.in_(feedback_ids), ReviewTaskRow.status == "open"
                )
            )
        )
        for fid in feedback_ids:
            if fid in open_ids or s.get(FeedbackRow, fid) is None:
                continue
            task = ReviewTaskRow(
                feedback_id=fid,
                reason=reason,
                priority=priority,
                status="open",
                taxonomy_version=taxonomy_version,
                labels_required=1,
                created_at=_now(),
            )
            s.add(task)
            s.flush()
            created.append(task.id)
    return created


def next_task(db: Database, annotator: str, taxonomy: Taxonomy) -> TaskView | None:
    """Lease the most valuable open task this annotator has not answered yet (None when the queue is empty)."""
    annotator = _annotator(annotator)
    now = _now()
    with db.session() as s:
        answered = select(LabelRow.task_id).where(LabelRow.annotator == annotator, LabelRow.task_id.is_not(None))
        stmt = (
            select(ReviewTaskRow)
            .where(
                ReviewTaskRow.status == "open",
                # relabel tasks of a taxonomy refresh are answered under their own (new) version
                or_(ReviewTaskRow.taxonomy_version == taxonomy.version, ReviewTaskRow.reason == "relabel"),
                ReviewTaskRow.id.not_in(answered),
                or_(
                    ReviewTaskRow.lease_until.is_(None),
                    ReviewTaskRow.lease_until < now,
                    ReviewTaskRow.lease_annotator == annotator,
                    ReviewTaskRow.labels_required > 1,
                ),
            )
            .order_by(ReviewTaskRow.priority.desc(), ReviewTaskRow.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        task = s.scalars(stmt).first()
        if task is None:
            return None
        task.lease_annotator, task.lease_until = annotator, now + LEASE
        fb = s.get(FeedbackRow, task.feedback_id)
        pred = s.get(PredictionRow, task.prediction_id) if task.prediction_id else None
        assert fb is not None
        return TaskView(
            id=task.id,
            feedback_id=fb.id,
            text=fb.text,
            channel=fb.channel,
            reason=task.reason,
            priority=task.priority,
            taxonomy_version=task.taxonomy_version,
            labels_required=task.labels_required,
            suggestions=list(task.suggestions) if task.suggestions is not None else (pred.alternatives if pred else []),
            predicted_owner=pred.owner if pred else None,
        )


def submit(
    db: Database,
    task_id: int,
    annotator: str,
    action: Action,
    taxonomy: Taxonomy,
    category: str | None = None,
    owner: str | None = None,
) -> ReviewTaskRow:
    """Record an annotator's answer. Refuses unknown labels, stale tasks and tasks already completed."""
    annotator = _annotator(annotator)
    if action != "label" and category is not None:
        raise InputError(f"action '{action}' takes no category")
    with db.session() as s:
        task = s.get(ReviewTaskRow, task_id, with_for_update=True)
        if task is None:
            raise NotFoundError(f"no review task {task_id}")
        if task.taxonomy_version != taxonomy.version:
            if task.reason != "relabel":
                raise StaleTaskError(
                    f"task {task_id} was made under taxonomy {task.taxonomy_version}; {taxonomy.version} is in force"
                )
            taxonomy = stored_taxonomy(s, task.taxonomy_version)
        if action == "label":
            if category is None:
                raise InputError("a label needs a category")
            if category not in taxonomy.leaf_owner:
                raise InputError(f"category '{category}' is not a leaf category of taxonomy {taxonomy.version}")
        if owner is not None and owner not in taxonomy.owner_by_id:
            raise InputError(f"owner '{owner}' is not an owner in taxonomy {taxonomy.version}")
        answers = list(s.scalars(select(LabelRow).where(LabelRow.task_id == task_id, LabelRow.action != "skip")))
        if task.status == "done":
            by = ", ".join(sorted({a.annotator for a in answers})) or "someone else"
            raise ConflictError(f"task {task_id} is already completed (by {by})")
        if any(a.annotator == annotator for a in answers):
            raise ConflictError(f"{annotator} already answered task {task_id}")
        if action == "skip":
            task.lease_annotator, task.lease_until = None, None
            if not s.scalars(
                select(LabelRow).where(
                    LabelRow.task_id == task_id, LabelRow.annotator == annotator, LabelRow.action == "skip"
                )
            ).first():
                s.add(
                    LabelRow(
                        task_id=task_id,
                        feedback_id=task.feedback_id,
                        annotator=annotator,
                        action="skip",
                        taxonomy_version=taxonomy.version,
                        created_at=_now(),
                    )
                )
            return task
        if action == "label" and owner is None:
            assert category is not None
            owner = taxonomy.owner_of(category)
        if action == "label" and task.taxonomy_version == taxonomy.version:
            assert category is not None and owner is not None
            reroute(s, task.feedback_id, owner, category, actor=annotator, taxonomy_version=taxonomy.version)
        s.add(
            LabelRow(
                task_id=task_id,
                feedback_id=task.feedback_id,
                annotator=annotator,
                action=action,
                category=category,
                owner=owner,
                taxonomy_version=taxonomy.version,
                created_at=_now(),
            )
        )
        if len(answers) + 1 >= task.labels_required:
            task.status, task.completed_at = "done", _now()
        task.lease_annotator, task.lease_until = None, None
        return task


def stats(db: Database) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(
            select(ReviewTaskRow.status, ReviewTaskRow.reason, func.count()).group_by(
                ReviewTaskRow.status, ReviewTaskRow.reason
            )
        ).all()
        labels = s.scalar(select(func.count()).select_from(LabelRow).where(LabelRow.action != "skip")) or 0
    out: Counter[str] = Counter()
    for status, reason, n in rows:
        out[status] += n
        out[f"{status}_{reason}"] += n
    out["answers"] = labels
    return {"open": out["open"], "done": out["done"], **dict(out)}


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else None
    return (observed - expected) / (1 - expected)


def agreement(db: Database) -> Agreement:
    """Cohen's kappa between the first two answers on every task that two annotators answered."""
    with db.session() as s:
        rows = s.execute(
            select(LabelRow.task_id, LabelRow.annotator, LabelRow.action, LabelRow.category)
            .where(LabelRow.action != "skip", LabelRow.task_id.is_not(None))
            .order_by(LabelRow.task_id, LabelRow.id)
        ).all()
    by_task: dict[int, list[str]] = {}
    for task_id, _annotator, action, category in rows:
        if task_id is not None:
            by_task.setdefault(task_id, []).append(category if action == "label" and category else "<none>")
    pairs = [v[:2] for v in by_task.values() if len(v) >= 2]
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a else 0.0
    return Agreement(items=len(pairs), observed=observed, kappa=cohen_kappa(a, b))


def accepted_labels(db: Database, taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
    """(feedback id, text, category) of the newest 'label' answer per item under ``taxonomy``."""
    with db.session() as s:
        return accepted_in(s, taxonomy.version)


def _annotator(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise InputError("annotator must be 1 to 128 characters")
    return name
