"""Strategies in force and backtest jobs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29

``strategy_plans`` keeps every change of the champion, challenger and shadows, the latest in
force; each row names the audit record of its change. ``backtests`` holds the backtests
requested through the API, so that any worker can report a job's progress and result. With
no plan recorded, the service decides with the model and policy of its settings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "strategy_plans",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_at", sa.String(27), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "backtests",
        sa.Column("backtest_id", sa.String(40), nullable=False),
        sa.Column("strategy", sa.String(200), nullable=False),
        sa.Column("since", sa.String(27)),
        sa.Column("until", sa.String(27)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.String(27), nullable=False),
        sa.Column("heartbeat_at", sa.String(27)),
        sa.Column("finished_at", sa.String(27)),
        sa.Column("rows", sa.BigInteger()),
        sa.Column("summary", sa.Text()),
        sa.Column("report", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("backtest_id"),
    )
    op.create_index("ix_backtests_requested", "backtests", ["requested_at"])


def downgrade() -> None:
    op.drop_index("ix_backtests_requested", table_name="backtests")
    op.drop_table("backtests")
    op.drop_table("strategy_plans")
