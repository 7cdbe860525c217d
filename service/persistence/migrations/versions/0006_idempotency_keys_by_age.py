"""Idempotency keys by age, for the purge of keys past their retention or expiry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Each worker purges now and then every key claimed before the retention period and every
claim left in progress past its expiry; without an index on ``created_at`` that is a scan of
the whole table, which grows with a day's applications.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
