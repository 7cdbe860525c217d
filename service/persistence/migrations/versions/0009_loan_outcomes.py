"""Loan outcomes: whether an approved loan was drawn, and how it performed month by month.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

``loans`` holds one row per approved application the bank's servicing system posted an
outcome for, with the grade, PD and credit line its decision recorded; ``loan_performance``
one row per loan and month. Their indexes serve the calibration: drawn loans grouped by grade
and month of approval, and the months that make a loan a default.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loans",
        sa.Column("application_id", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("drawn", sa.Boolean(), nullable=False),
        sa.Column("drawn_at", sa.String(27)),
        sa.Column("amount", sa.Float()),
        sa.Column("credit_limit", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(4), nullable=False),
        sa.Column("pd", sa.Float()),
        sa.Column("approved_at", sa.String(27), nullable=False),
        sa.Column("approved_month", sa.String(7), nullable=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.Column("updated_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("application_id"),
    )
    op.create_index("ix_loans_cohort", "loans", ["drawn", "grade", "approved_month"])
    op.create_table(
        "loan_performance",
        sa.Column("application_id", sa.String(40), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("application_id", "month"),
        sa.ForeignKeyConstraint(["application_id"], ["loans.application_id"]),
    )
    op.create_index("ix_loan_performance_status", "loan_performance",
                    ["status", "days_past_due", "application_id"])


def downgrade() -> None:
    op.drop_index("ix_loan_performance_status", table_name="loan_performance")
    op.drop_table("loan_performance")
    op.drop_index("ix_loans_cohort", table_name="loans")
    op.drop_table("loans")
