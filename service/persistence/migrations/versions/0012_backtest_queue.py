"""The backtests table as a queue that any worker's runner serves.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

A job keeps what it asks (``lgd`` beside the strategy and window), so that any worker can run
it from its row; ``claimed_by`` names the runner that claimed it, ``started_at`` when, and
``cancelled_by`` the risk officer who cancelled it. The status index serves the claim of the
oldest queued job and the count of unfinished ones. Jobs from before this revision have no
``lgd``: they were asked with 1 or run already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backtests") as table:
        table.add_column(sa.Column("lgd", sa.Float()))
        table.add_column(sa.Column("claimed_by", sa.String(64)))
        table.add_column(sa.Column("started_at", sa.String(27)))
        table.add_column(sa.Column("cancelled_by", sa.String(128)))
    op.create_index("ix_backtests_status", "backtests", ["status", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_backtests_status", table_name="backtests")
    with op.batch_alter_table("backtests") as table:
        for name in ("cancelled_by", "started_at", "claimed_by", "lgd"):
            table.drop_column(name)
