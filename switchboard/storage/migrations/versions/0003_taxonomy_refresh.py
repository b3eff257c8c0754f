"""Taxonomy versions, applied migrations, relabel suggestions and the source of each prediction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "taxonomies",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "taxonomy_migrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("from_version", sa.String(64), nullable=False),
        sa.Column("to_version", sa.String(64), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("applied_at", TS, nullable=False),
        sa.UniqueConstraint("from_version", "to_version", name="uq_taxonomy_migration"),
    )
    with op.batch_alter_table("review_tasks") as batch:
        batch.add_column(sa.Column("suggestions", sa.JSON, nullable=True))
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="live"))
        batch.create_index("ix_predictions_taxonomy_feedback", ["taxonomy_version", "feedback_id"])


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index("ix_predictions_taxonomy_feedback")
        batch.drop_column("source")
    with op.batch_alter_table("review_tasks") as batch:
        batch.drop_column("suggestions")
    op.drop_table("taxonomy_migrations")
    op.drop_table("taxonomies")
