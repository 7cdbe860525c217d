"""The monitoring roll-up: counts and sums of decisions per bucket of time.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

``monitoring_cells`` is maintained inside each decision's own transaction, so the dashboard
reads a window from a few thousand rows whatever the number of decisions;
``monitoring_marks`` says up to where its five-minute buckets have been added into the
hourly and daily ones. The cells' primary key (grain, bucket, metric, key) serves both the
upsert of a decision and the range read of a window; the series index serves one metric
read over many buckets. The reviews gain an index on when they were resolved, which the
dashboard counts by window. Decisions made before this revision are not in the roll-up: the
dashboard counts from the upgrade on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_cells",
        sa.Column("grain", sa.String(4), nullable=False),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "bucket", "metric", "key"),
    )
    op.create_index("ix_monitoring_cells_series", "monitoring_cells",
                    ["grain", "metric", "bucket"])
    op.create_index("ix_reviews_resolved", "reviews", ["resolved_at"])
    op.create_table(
        "monitoring_marks",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("monitoring_marks")
    op.drop_index("ix_reviews_resolved", table_name="reviews")
    op.drop_index("ix_monitoring_cells_series", table_name="monitoring_cells")
    op.drop_table("monitoring_cells")
