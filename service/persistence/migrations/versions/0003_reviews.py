"""Review requests: an applicant's right to a human review of an automated decision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

The same schema as the second hand-written service migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("review_id", sa.String(40), nullable=False),
        sa.Column("application_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("note", sa.Text()),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("resolved_at", sa.String(27)),
        sa.PrimaryKeyConstraint("review_id"),
    )
    op.create_index("ix_reviews_application", "reviews", ["application_id"])
    op.create_index("ix_reviews_state", "reviews", ["state", "created_at", "review_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_state", table_name="reviews")
    op.drop_index("ix_reviews_application", table_name="reviews")
    op.drop_table("reviews")
