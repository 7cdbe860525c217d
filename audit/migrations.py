"""Schema migrations: an ordered list of DDL per dialect, applied once, under a lock.

Each database remembers what it has applied in ``schema_migrations`` (component, version).
:func:`apply_migrations` takes the migration lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an
advisory lock), reads the versions applied, runs the missing ones in order and records them,
all in one transaction: when many workers start at once, one migrates and the others find the
work done. DDL is transactional on both databases, so a failed migration leaves nothing half
applied. To change the schema later, append a ``Migration`` with the next version; never edit
one that has shipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from audit.canonical import format_time
from audit.engine import lock_migrations, write_mode, writer_turn
from audit.errors import AuditError

__all__ = ["MIGRATIONS", "Migration", "applied_versions", "apply_migrations"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: its version, what it does, and its statements per dialect."""

    version: int
    description: str
    statements: Mapping[str, Sequence[str]]


_COLUMNS = """
    recorded_at VARCHAR(27) NOT NULL,
    kind VARCHAR(64) NOT NULL,
    application_id VARCHAR(64),
    actor VARCHAR(128),
    payload TEXT,
    payload_hash VARCHAR(64) NOT NULL,
    prev_hash VARCHAR(64) NOT NULL,
    record_hash VARCHAR(64) NOT NULL,
    subject VARCHAR(64),
    outcome VARCHAR(32),
    model_version VARCHAR(64),
    CONSTRAINT ck_audit_records_seq CHECK (seq >= 1),
    CONSTRAINT uq_audit_records_prev_hash UNIQUE (prev_hash),
    CONSTRAINT uq_audit_records_record_hash UNIQUE (record_hash)
"""

# Keyset pagination filters on one column and orders by seq, hence (column, seq); columns
# that most records leave empty get partial indexes.
_INDEXES = (
    "CREATE INDEX ix_audit_records_recorded_at ON audit_records (recorded_at)",
    "CREATE INDEX ix_audit_records_kind ON audit_records (kind, seq)",
    *(
        f"CREATE INDEX ix_audit_records_{column} ON audit_records ({column}, seq) "
        f"WHERE {column} IS NOT NULL"
        for column in ("application_id", "actor", "subject", "outcome", "model_version")
    ),
    "CREATE INDEX ix_audit_reason_codes_code ON audit_reason_codes (code, seq)",
)

_SQLITE_SAME = " OR ".join(
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

_SQLITE_V1 = (
    f"CREATE TABLE audit_records (\n    seq INTEGER NOT NULL PRIMARY KEY,{_COLUMNS})",
    "CREATE TABLE audit_reason_codes (\n"
    "    seq INTEGER NOT NULL REFERENCES audit_records (seq),\n"
    "    code VARCHAR(64) NOT NULL,\n"
    "    PRIMARY KEY (seq, code)\n) WITHOUT ROWID",
    *_INDEXES,
    "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records BEGIN "
    "SELECT RAISE(ABORT, 'audit_records is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_records_only_purge BEFORE UPDATE ON audit_records "
    f"WHEN NEW.payload IS NOT NULL OR {_SQLITE_SAME} BEGIN "
    "SELECT RAISE(ABORT, 'audit_records is append-only: only a purge may set payload to NULL'); "
    "END",
    "CREATE TRIGGER audit_reason_codes_no_delete BEFORE DELETE ON audit_reason_codes BEGIN "
    "SELECT RAISE(ABORT, 'audit_reason_codes is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_reason_codes_no_update BEFORE UPDATE ON audit_reason_codes BEGIN "
    "SELECT RAISE(ABORT, 'audit_reason_codes is append-only: UPDATE refused'); END",
)

_POSTGRES_V1 = (
    f"CREATE TABLE audit_records (\n    seq BIGINT NOT NULL PRIMARY KEY,{_COLUMNS})",
    "CREATE TABLE audit_reason_codes (\n"
    "    seq BIGINT NOT NULL REFERENCES audit_records (seq),\n"
    "    code VARCHAR(64) NOT NULL,\n"
    "    PRIMARY KEY (seq, code)\n)",
    *_INDEXES,
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

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "audit_records and audit_reason_codes with their indexes and append-only guards",
        {"sqlite": _SQLITE_V1, "postgresql": _POSTGRES_V1},
    ),
)

_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
    "    component VARCHAR(64) NOT NULL,\n"
    "    version INTEGER NOT NULL,\n"
    "    description VARCHAR(200) NOT NULL,\n"
    "    applied_at VARCHAR(27) NOT NULL,\n"
    "    PRIMARY KEY (component, version)\n)"
)


def apply_migrations(
    engine: Engine, migrations: Sequence[Migration] = MIGRATIONS, component: str = "audit"
) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied now."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order; got {versions}")
    dialect = engine.dialect.name
    applied_now: list[int] = []
    with writer_turn(engine), engine.connect() as conn:
        write_mode(conn)
        with conn.begin():
            lock_migrations(conn)
            conn.exec_driver_sql(_LEDGER)
            done = _versions(conn, component)
            unknown = sorted(done - set(versions))
            if unknown:
                raise AuditError(
                    f"database schema of {component} must be at most version {len(versions)} "
                    f"for this code; got version {unknown[-1]}"
                )
            for migration in migrations:
                if migration.version in done:
                    continue
                if dialect not in migration.statements:
                    raise AuditError(
                        f"migration {migration.version} must have statements for {dialect}; "
                        f"got {sorted(migration.statements)}"
                    )
                for statement in migration.statements[dialect]:
                    conn.exec_driver_sql(statement)
                conn.execute(
                    text(
                        "INSERT INTO schema_migrations "
                        "(component, version, description, applied_at) "
                        "VALUES (:component, :version, :description, :applied_at)"
                    ),
                    {
                        "component": component,
                        "version": migration.version,
                        "description": migration.description,
                        "applied_at": format_time(datetime.now(UTC)),
                    },
                )
                applied_now.append(migration.version)
    return applied_now


def applied_versions(engine: Engine, component: str = "audit") -> set[int]:
    """Return the migration versions recorded in this database for ``component``."""
    with engine.connect() as conn:
        return _versions(conn, component)


def _versions(conn, component: str) -> set[int]:
    rows = conn.execute(
        text("SELECT version FROM schema_migrations WHERE component = :component"),
        {"component": component},
    )
    return {int(row[0]) for row in rows}
