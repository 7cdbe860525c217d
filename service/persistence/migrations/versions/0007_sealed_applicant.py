"""A deferred application's applicant, kept encrypted until it is decided.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

``applications.sealed_applicant`` holds the applicant (national ID, name, mobile) of a deferred
application, encrypted, so that the scheduler can decide it again
(``flashloan applications retry-deferred``); it is NULL for every other application. Rows
deferred before this revision have none: their channel retries them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("sealed_applicant", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("sealed_applicant")
