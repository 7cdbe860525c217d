"""A payload goes to NULL only under a purge that names it; the ledger of checkpoints.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The update guard of ``audit_records`` let any payload be set to NULL, so erasing a recent
decision passed as a purge. Now the record must be covered by the ``records.purged`` record
at the head of the chain, which the purge appends before it removes anything, in the same
transaction: the record's seq lies in the purge's range, it was recorded before the purge's
cut-off, it is not itself a purge record, and the cut-off lies at least the purge's retention
period before the purge was recorded. ``audit_checkpoints`` keeps the checkpoints the service
takes by itself, insert only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# INTEGER on SQLite makes seq the rowid, so the table is stored in seq order.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

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

_REFUSED = "audit_records is append-only: only a purge may set payload to NULL"

# The year of a canonical time moved back by the retention period, by its digits: the same
# text audit.retention.shift_years computes.
_SQLITE_COVERED = """EXISTS (
    SELECT 1 FROM audit_records AS purge
    WHERE purge.seq = (SELECT max(seq) FROM audit_records)
      AND purge.kind = 'records.purged'
      AND OLD.kind <> 'records.purged'
      AND OLD.seq BETWEEN json_extract(purge.payload, '$.first_seq')
                      AND json_extract(purge.payload, '$.last_seq')
      AND OLD.recorded_at < json_extract(purge.payload, '$.before')
      AND json_extract(purge.payload, '$.before') <=
          printf('%04d', substr(purge.recorded_at, 1, 4)
                         - json_extract(purge.payload, '$.retention_years'))
          || substr(purge.recorded_at, 5))"""

_SQLITE_PURGE_GUARD = (
    "CREATE TRIGGER audit_records_only_purge BEFORE UPDATE ON audit_records "
    f"WHEN NEW.payload IS NOT NULL OR {_SQLITE_UNCHANGED} "
    f"OR (OLD.payload IS NOT NULL AND NOT {_SQLITE_COVERED}) BEGIN "
    "SELECT RAISE(ABORT, 'audit_records is append-only: a payload may be set to NULL only by "
    "a purge of records past their retention period, recorded first as records.purged'); END"
)

_SQLITE_PURGE_GUARD_0001 = (
    "CREATE TRIGGER audit_records_only_purge BEFORE UPDATE ON audit_records "
    f"WHEN NEW.payload IS NOT NULL OR {_SQLITE_UNCHANGED} BEGIN "
    f"SELECT RAISE(ABORT, '{_REFUSED}'); END"
)

_POSTGRES_GUARD = """CREATE OR REPLACE FUNCTION audit_records_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    purge audit_records%ROWTYPE;
    facts jsonb;
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION USING MESSAGE = 'audit_records is append-only: ' || TG_OP || ' refused';
    END IF;
    -- Comparing the rows as JSON minus the payload keeps the guard right when columns are
    -- added later.
    IF NEW.payload IS NOT NULL OR (to_jsonb(NEW) - 'payload') <> (to_jsonb(OLD) - 'payload') THEN
        RAISE EXCEPTION 'audit_records is append-only: only a purge may set payload to NULL';
    END IF;
    IF OLD.payload IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT * INTO purge FROM audit_records ORDER BY seq DESC LIMIT 1;
    IF purge.kind = 'records.purged' AND OLD.kind <> 'records.purged'
            AND purge.payload IS NOT NULL THEN
        facts := purge.payload::jsonb;
        IF OLD.seq BETWEEN (facts ->> 'first_seq')::bigint AND (facts ->> 'last_seq')::bigint
                AND OLD.recorded_at COLLATE "C" < (facts ->> 'before') COLLATE "C"
                AND (facts ->> 'before') COLLATE "C" <=
                    (lpad((substr(purge.recorded_at, 1, 4)::int
                           - (facts ->> 'retention_years')::int)::text, 4, '0')
                     || substr(purge.recorded_at, 5)) COLLATE "C" THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION USING MESSAGE = 'audit_records is append-only: a payload may be set to '
        || 'NULL only by a purge of records past their retention period, recorded first as '
        || 'records.purged';
END $$"""

_POSTGRES_GUARD_0001 = f"""CREATE OR REPLACE FUNCTION audit_records_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.payload IS NULL AND (to_jsonb(NEW) - 'payload') = (to_jsonb(OLD) - 'payload') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '{_REFUSED}';
    END IF;
    RAISE EXCEPTION USING MESSAGE = 'audit_records is append-only: ' || TG_OP || ' refused';
END $$"""

_SQLITE_LEDGER_GUARDS = (
    "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints BEGIN "
    "SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints BEGIN "
    "SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END",
)

_POSTGRES_LEDGER_GUARDS = (
    """CREATE FUNCTION audit_checkpoints_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'audit_checkpoints is append-only: ' || TG_OP || ' refused';
END $$""",
    "CREATE TRIGGER audit_checkpoints_guard BEFORE UPDATE OR DELETE OR TRUNCATE "
    "ON audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_guard()",
)


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", _SEQ, nullable=False, autoincrement=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("time", sa.String(27), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    if _sqlite():
        op.execute("DROP TRIGGER audit_records_only_purge")
        op.execute(_SQLITE_PURGE_GUARD)
        for statement in _SQLITE_LEDGER_GUARDS:
            op.execute(statement)
    else:
        op.execute(_POSTGRES_GUARD)
        for statement in _POSTGRES_LEDGER_GUARDS:
            op.execute(statement)


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP TRIGGER audit_checkpoints_no_update")
        op.execute("DROP TRIGGER audit_checkpoints_no_delete")
        op.execute("DROP TRIGGER audit_records_only_purge")
        op.execute(_SQLITE_PURGE_GUARD_0001)
    else:
        op.execute("DROP TRIGGER audit_checkpoints_guard ON audit_checkpoints")
        op.execute("DROP FUNCTION audit_checkpoints_guard()")
        op.execute(_POSTGRES_GUARD_0001)
    op.drop_table("audit_checkpoints")
