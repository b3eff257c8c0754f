"""Backfill: re-classify stored feedback with the model in force, so trend lines stay continuous across a
taxonomy refresh. Each prediction records the model and taxonomy version that made it (source ``backfill``).

Work goes in batches, one transaction each; an item counts as done once it has a prediction under the
target taxonomy version, so a crashed or interrupted backfill resumes where it stopped when run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, func, select
from sqlalchemy.sql import Select

from models.classifier import Classifier
from switchboard.storage import Database
from switchboard.storage.tables import FeedbackRow, PredictionRow
from switchboard.text import CleanText


@dataclass(frozen=True)
class BackfillResult:
    taxonomy_version: str
    model_version: str
    classified: int
    remaining: int
    batches: int


def _pending(taxonomy_version: str) -> Select[str, str, bool]:
    done = exists().where(
        PredictionRow.feedback_id == FeedbackRow.id, PredictionRow.taxonomy_version == taxonomy_version
    )
    return select(FeedbackRow.id, FeedbackRow.text, FeedbackRow.truncated).where(~done)


def pending_count(db: Database, taxonomy_version: str) -> int:
    """Stored items without a prediction under ``taxonomy_version``."""
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(_pending(taxonomy_version).subquery())) or 0)


def backfill(
    db: Database,
    classifier: Classifier,
    batch_size: int = 256,
    max_items: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> BackfillResult:
    """Classify every stored item that has no prediction under the classifier's taxonomy version.

    ``on_batch`` is called with the number of items after each committed batch (a progress bar).
    """
    info = classifier.info
    classified = batches = 0
    while max_items is None or classified < max_items:
        size = batch_size if max_items is None else min(batch_size, max_items - classified)
        with db.session() as s:
            rows = s.execute(
                _pending(info.taxonomy_version).order_by(FeedbackRow.received_at, FeedbackRow.id).limit(size)
            ).all()
            if not rows:
                break
            predictions = classifier.predict_cleaned([CleanText(text, bool(trunc)) for _, text, trunc in rows])
            now = datetime.now(UTC)
            s.add_all(
                PredictionRow.of(fid, info, pred, now, source="backfill")
                for (fid, _, _), pred in zip(rows, predictions, strict=True)
            )
        classified += len(rows)
        batches += 1
        if on_batch is not None:
            on_batch(len(rows))
    return BackfillResult(
        info.taxonomy_version, info.version, classified, pending_count(db, info.taxonomy_version), batches
    )
