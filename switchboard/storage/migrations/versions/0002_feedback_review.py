"""Feedback, predictions, review tasks and labels.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("external_id", sa.String(256), nullable=True, index=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feedback_id", sa.String(32), sa.ForeignKey("feedback.id", ondelete="CASCADE"), index=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("taxonomy_version", sa.String(64), nullable=False),
        sa.Column("category", sa.String(128), nullable=False),
        sa.Column("category_confidence", sa.Float, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("owner_confidence", sa.Float, nullable=False),
        sa.Column("alternatives", sa.JSON, nullable=False),
        sa.Column("category_decision", sa.String(16), nullable=False),
        sa.Column("owner_decision", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feedback_id", sa.String(32), sa.ForeignKey("feedback.id", ondelete="CASCADE"), index=True),
        sa.Column("prediction_id", sa.Integer, sa.ForeignKey("predictions.id", ondelete="SET NULL"), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("priority", sa.Float, nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("taxonomy_version", sa.String(64), nullable=False),
        sa.Column("labels_required", sa.Integer, nullable=False),
        sa.Column("lease_annotator", sa.String(128), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("review_tasks.id", ondelete="CASCADE"), index=True),
        sa.Column("feedback_id", sa.String(32), sa.ForeignKey("feedback.id", ondelete="CASCADE"), index=True),
        sa.Column("annotator", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("category", sa.String(128), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("taxonomy_version", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("task_id", "annotator", "action", name="uq_label_task_annotator"),
    )


def downgrade() -> None:
    for table in ("labels", "review_tasks", "predictions", "feedback"):
        op.drop_table(table)
