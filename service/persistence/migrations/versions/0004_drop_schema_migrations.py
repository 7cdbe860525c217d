"""Drop the ledger of the earlier hand-written migrations; alembic_version replaces it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Only a database made before Alembic has the table; once its ledger has been read and the
database stamped with the matching revision, nothing reads it again.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS schema_migrations")


def downgrade() -> None:
    """Nothing to restore: the ledger's rows meant nothing once the database was stamped."""
