"""ORM tables (storage schemas; the API has its own). Migrations under migrations/versions create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from switchboard.schemas import ModelInfo, Prediction


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of its secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class FeedbackRow(Base):
    """One piece of customer feedback as received (after the shared text cleaning)."""

    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    text: Mapped[str] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PredictionRow(Base):
    """What a model said about a feedback item, and whether it was applied automatically."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feedback_id: Mapped[str] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(128))
    taxonomy_version: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(128))
    category_confidence: Mapped[float] = mapped_column(Float)
    owner: Mapped[str] = mapped_column(String(64))
    owner_confidence: Mapped[float] = mapped_column(Float)
    alternatives: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    category_decision: Mapped[str] = mapped_column(String(16))
    owner_decision: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="live", server_default="live")  # live | backfill
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @classmethod
    def of(
        cls, feedback_id: str, model: ModelInfo, pred: Prediction, created_at: datetime, source: str = "live"
    ) -> PredictionRow:
        """The stored form of a model's prediction."""
        return cls(
            feedback_id=feedback_id,
            model_name=model.name,
            model_version=model.version,
            taxonomy_version=model.taxonomy_version,
            category=pred.category.id,
            category_confidence=pred.category.confidence,
            owner=pred.owner.id,
            owner_confidence=pred.owner.confidence,
            alternatives=[a.model_dump() for a in pred.alternatives],
            category_decision=pred.routing.category,
            owner_decision=pred.routing.owner,
            source=source,
            created_at=created_at,
        )


class ReviewTaskRow(Base):
    """An item waiting for (or done by) human review."""

    __tablename__ = "review_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feedback_id: Mapped[str] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"), index=True)
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(32))
    priority: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    taxonomy_version: Mapped[str] = mapped_column(String(64))
    labels_required: Mapped[int] = mapped_column(Integer, default=1)
    suggestions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    lease_annotator: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LabelRow(Base):
    """One annotator's answer on one task: a label, 'none of these', or a skip."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("task_id", "annotator", "action", name="uq_label_task_annotator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("review_tasks.id", ondelete="CASCADE"), index=True)
    feedback_id: Mapped[str] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"), index=True)
    annotator: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(128), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    taxonomy_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TaxonomyRow(Base):
    """A taxonomy version known to this database (its YAML document)."""

    __tablename__ = "taxonomies"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TaxonomyMigrationRow(Base):
    """A taxonomy migration applied to the stored labels and tasks (applied once)."""

    __tablename__ = "taxonomy_migrations"
    __table_args__ = (UniqueConstraint("from_version", "to_version", name="uq_taxonomy_migration"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    from_version: Mapped[str] = mapped_column(String(64))
    to_version: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime())
