"""The audit trail: audit_records and audit_reason_codes, their indexes, append-only guards.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

The same schema as the first hand-written audit migration, statement for statement.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# INTEGER on SQLite makes seq the rowid, so the table is stored in seq order.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Keyset pagination filters on one column and orders by seq, hence (column, seq); columns
# that most records leave empty get partial indexes.
_PARTIAL = ("application_id", "actor", "subject", "outcome", "model_version")

_SQLITE_UNCHANGED = " OR ".join(
    f"NEW.{column} IS NOT OLD.{column}"
    for column in (
        "seq",
        "recorded_at",
        "kind",
        "application_id",
        "actor",
        "payload_hash",
        "prev_hash",
        "record_hash",
        "subject",
        "outcome",
        "model_version",
    )
)

_SQLITE_GUARDS = (
    "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records BEGIN "
    "SELECT RAISE(ABORT, 'audit_records is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_records_only_purge BEFORE UPDATE ON audit_records "
    f"WHEN NEW.payload IS NOT NULL OR {_SQLITE_UNCHANGED} BEGIN "
    "SELECT RAISE(ABORT, 'audit_records is append-only: only a purge may set payload to NULL'); "
    "END",
    "CREATE TRIGGER audit_reason_codes_no_delete BEFORE DELETE ON audit_reason_codes BEGIN "
    "SELECT RAISE(ABORT, 'audit_reason_codes is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_reason_codes_no_update BEFORE UPDATE ON audit_reason_codes BEGIN "
    "SELECT RAISE(ABORT, 'audit_reason_codes is append-only: UPDATE refused'); END",
)

_POSTGRES_GUARDS = (
    # Comparing the rows as JSON minus the payload keeps the guard right when columns are
    # added later.
    """CREATE FUNCTION audit_records_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.payload IS NULL AND (to_jsonb(NEW) - 'payload') = (to_jsonb(OLD) - 'payload') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_records is append-only: only a purge may set payload to NULL';
    END IF;
    RAISE EXCEPTION USING MESSAGE = 'audit_records is append-only: ' || TG_OP || ' refused';
END $$""",
    """CREATE FUNCTION audit_reason_codes_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'audit_reason_codes is append-only: ' || TG_OP || ' refused';
END $$""",
    "CREATE TRIGGER audit_records_guard BEFORE UPDATE OR DELETE ON audit_records "
    "FOR EACH ROW EXECUTE FUNCTION audit_records_guard()",
    "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_guard()",
    "CREATE TRIGGER audit_reason_codes_guard BEFORE UPDATE OR DELETE OR TRUNCATE "
    "ON audit_reason_codes FOR EACH STATEMENT EXECUTE FUNCTION audit_reason_codes_guard()",
)


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", _SEQ, nullable=False, autoincrement=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("application_id", sa.String(64)),
        sa.Column("actor", sa.String(128)),
        sa.Column("payload", sa.Text()),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("model_version", sa.String(64)),
        sa.PrimaryKeyConstraint("seq"),
        sa.CheckConstraint("seq >= 1", name="ck_audit_records_seq"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_records_prev_hash"),
        sa.UniqueConstraint("record_hash", name="uq_audit_records_record_hash"),
    )
    op.create_table(
        "audit_reason_codes",
        sa.Column("seq", _SEQ, nullable=False, autoincrement=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", "code"),
        sa.ForeignKeyConstraint(["seq"], ["audit_records.seq"]),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_audit_records_recorded_at", "audit_records", ["recorded_at"])
    op.create_index("ix_audit_records_kind", "audit_records", ["kind", "seq"])
    for column in _PARTIAL:
        present = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_audit_records_{column}",
            "audit_records",
            [column, "seq"],
            sqlite_where=present,
            postgresql_where=present,
        )
    op.create_index("ix_audit_reason_codes_code", "audit_reason_codes", ["code", "seq"])
    guards = _SQLITE_GUARDS if op.get_context().dialect.name == "sqlite" else _POSTGRES_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for trigger in (
            "audit_records_no_delete",
            "audit_records_only_purge",
            "audit_reason_codes_no_delete",
            "audit_reason_codes_no_update",
        ):
            op.execute(f"DROP TRIGGER {trigger}")
    else:
        op.execute("DROP TRIGGER audit_reason_codes_guard ON audit_reason_codes")
        op.execute("DROP TRIGGER audit_records_no_truncate ON audit_records")
        op.execute("DROP TRIGGER audit_records_guard ON audit_records")
        op.execute("DROP FUNCTION audit_reason_codes_guard()")
        op.execute("DROP FUNCTION audit_records_guard()")
    op.drop_table("audit_reason_codes")
    op.drop_table("audit_records")
