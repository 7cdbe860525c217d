"""Databases made before Alembic: their ledger, and the revision that made the same schema.

The earlier hand-written migrations recorded what they had applied in ``schema_migrations``
(component, version). Revisions 0001 to 0003 reproduce those migrations statement for
statement, so a database whose ledger and tables match one of them is stamped with that
revision and upgraded from there; revision 0004 then drops the ledger. A ledger this code does
not know, or tables missing from what the ledger claims, is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, inspect, text

from service.persistence.migrations import SchemaError

__all__ = ["LEDGER", "legacy_revision"]

LEDGER = "schema_migrations"

_AUDIT = {
    "audit_records": (
        (
            "seq",
            "recorded_at",
            "kind",
            "application_id",
            "actor",
            "payload",
            "payload_hash",
            "prev_hash",
            "record_hash",
            "subject",
            "outcome",
            "model_version",
        ),
        (
            "ix_audit_records_recorded_at",
            "ix_audit_records_kind",
            "ix_audit_records_application_id",
            "ix_audit_records_actor",
            "ix_audit_records_subject",
            "ix_audit_records_outcome",
            "ix_audit_records_model_version",
        ),
    ),
    "audit_reason_codes": (("seq", "code"), ("ix_audit_reason_codes_code",)),
}
_SERVICE_1 = {
    "api_keys": (("key_id", "name", "role", "secret_hash", "created_at", "revoked_at"), ()),
    "consents": (
        (
            "consent_id",
            "subject",
            "channel",
            "key_id",
            "scopes",
            "purpose",
            "granted_at",
            "expires_at",
            "text_version",
            "created_at",
            "withdrawn_at",
        ),
        ("ix_consents_channel",),
    ),
    "applications": (
        (
            "application_id",
            "channel",
            "key_id",
            "subject",
            "consent_id",
            "status",
            "outcome",
            "grade",
            "model_version",
            "decided_by",
            "created_at",
            "updated_at",
            "answer",
            "explanation",
            "details",
        ),
        ("ix_applications_channel", "ix_applications_status"),
    ),
    "idempotency_keys": (
        (
            "key_id",
            "idempotency_key",
            "body_hash",
            "state",
            "application_id",
            "status_code",
            "response",
            "created_at",
        ),
        (),
    ),
}
_SERVICE_2 = {
    "reviews": (
        (
            "review_id",
            "application_id",
            "channel",
            "key_id",
            "reason",
            "state",
            "outcome",
            "note",
            "resolved_by",
            "created_at",
            "resolved_at",
        ),
        ("ix_reviews_state", "ix_reviews_application"),
    ),
}
_TRIGGERS = {
    "sqlite": {
        "audit_records_no_delete",
        "audit_records_only_purge",
        "audit_reason_codes_no_delete",
        "audit_reason_codes_no_update",
    },
    "postgresql": {"audit_records_guard", "audit_records_no_truncate", "audit_reason_codes_guard"},
}

_Tables = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]  # name -> (columns, indexes)

# ledger -> the revision that made the same schema, and the tables it made
_BASELINES: dict[frozenset[tuple[str, int]], tuple[str, _Tables]] = {
    frozenset({("audit", 1)}): ("0001", _AUDIT),
    frozenset({("audit", 1), ("service", 1)}): ("0002", {**_AUDIT, **_SERVICE_1}),
    frozenset({("audit", 1), ("service", 1), ("service", 2)}): (
        "0003",
        {**_AUDIT, **_SERVICE_1, **_SERVICE_2},
    ),
}


def legacy_revision(conn: Connection) -> str | None:
    """Return the revision a database made before Alembic is at, or None if it is not one.

    Raise SchemaError if it has a ledger but its ledger or its tables are not ones this code
    knows.
    """
    inspector = inspect(conn)
    if not inspector.has_table(LEDGER):
        return None
    ledger = frozenset(
        (str(component), int(version))
        for component, version in conn.execute(text(f"SELECT component, version FROM {LEDGER}"))
    )
    if ledger not in _BASELINES:
        listed = ", ".join(f"{c} {v}" for c, v in sorted(ledger)) or "empty"
        raise SchemaError(
            f"database was made by earlier migrations this code does not know "
            f"({LEDGER}: {listed}); upgrade it with the release that made it first"
        )
    revision, tables = _BASELINES[ledger]
    problems = []
    present = set(inspector.get_table_names())
    for table, (columns, indexes) in tables.items():
        if table not in present:
            problems.append(f"table {table} is missing")
            continue
        found = [column["name"] for column in inspector.get_columns(table)]
        if found != list(columns):
            problems.append(f"table {table} has columns {found}, not {list(columns)}")
        missing = set(indexes) - {index["name"] for index in inspector.get_indexes(table)}
        if missing:
            problems.append(f"table {table} lacks indexes {sorted(missing)}")
    missing_triggers = _TRIGGERS[conn.dialect.name] - _triggers(conn)
    if missing_triggers:
        problems.append(f"append-only triggers {sorted(missing_triggers)} are missing")
    if problems:
        raise SchemaError(
            f"database's {LEDGER} matches revision {revision}, but its schema differs: "
            + "; ".join(problems)
        )
    return revision


def _triggers(conn: Connection) -> set[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    else:
        rows = conn.execute(
            text(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal"
            )
        )
    return {str(row[0]) for row in rows}
