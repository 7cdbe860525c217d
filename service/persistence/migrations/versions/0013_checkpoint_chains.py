"""Checkpoints name their chain; one development signing key per database.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

``audit_checkpoints.chain_id`` holds the hash of record 1 that a checkpoint signs with its
head, so that checkpoints of several databases kept in one folder can be told apart; rows of
earlier checkpoints keep NULL, as they were signed without it. ``audit_development_key``
holds, outside production and only when no signing key is configured, the one key that every
instance of the database signs with; production never writes it. Both are insert only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_SQLITE_GUARDS = (
    "CREATE TRIGGER audit_development_key_no_delete BEFORE DELETE ON audit_development_key "
    "BEGIN SELECT RAISE(ABORT, 'audit_development_key is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_development_key_no_update BEFORE UPDATE ON audit_development_key "
    "BEGIN SELECT RAISE(ABORT, 'audit_development_key is append-only: UPDATE refused'); END",
)

_POSTGRES_GUARDS = (
    """CREATE FUNCTION audit_development_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'audit_development_key is append-only: ' || TG_OP
        || ' refused';
END $$""",
    "CREATE TRIGGER audit_development_key_guard BEFORE UPDATE OR DELETE OR TRUNCATE "
    "ON audit_development_key FOR EACH STATEMENT EXECUTE FUNCTION "
    "audit_development_key_guard()",
)


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def upgrade() -> None:
    op.add_column("audit_checkpoints", sa.Column("chain_id", sa.String(64)))
    op.create_table(
        "audit_development_key",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_development_key_one"),
        sa.PrimaryKeyConstraint("id"),
    )
    for statement in _SQLITE_GUARDS if _sqlite() else _POSTGRES_GUARDS:
        op.execute(statement)


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP TRIGGER audit_development_key_no_update")
        op.execute("DROP TRIGGER audit_development_key_no_delete")
    else:
        op.execute("DROP TRIGGER audit_development_key_guard ON audit_development_key")
        op.execute("DROP FUNCTION audit_development_key_guard()")
    op.drop_table("audit_development_key")
    op.drop_column("audit_checkpoints", "chain_id")
