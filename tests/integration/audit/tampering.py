"""What someone with write access to the database could do to the chain, for the tests."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, text

from audit.canonical import sha256_hex
from audit.records import GENESIS_HASH, compute_record_hash

_SQLITE_TRIGGERS = (
    "audit_records_no_delete",
    "audit_records_only_purge",
    "audit_reason_codes_no_delete",
    "audit_reason_codes_no_update",
)


def drop_guards(engine: Engine) -> None:
    """Drop the append-only triggers, as anyone with owner rights on the database can."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER audit_records_guard ON audit_records")
            conn.exec_driver_sql("DROP TRIGGER audit_records_no_truncate ON audit_records")
            conn.exec_driver_sql("DROP TRIGGER audit_reason_codes_guard ON audit_reason_codes")
        else:
            for trigger in _SQLITE_TRIGGERS:
                conn.exec_driver_sql(f"DROP TRIGGER {trigger}")


def drop_fork_guard(engine: Engine) -> None:
    """Drop the unique index on prev_hash that stops two records extending one record."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "ALTER TABLE audit_records DROP CONSTRAINT uq_audit_records_prev_hash"
            )
            return
        # SQLite cannot drop a table constraint: rebuild the table without it.
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'audit_records'"
        ).scalar_one()
        constraint = "CONSTRAINT uq_audit_records_prev_hash UNIQUE (prev_hash),"
        assert constraint in ddl
        rebuilt = ddl.replace(constraint, "").replace(
            "CREATE TABLE audit_records", "CREATE TABLE audit_records_new"
        )
        conn.exec_driver_sql(rebuilt)
        conn.exec_driver_sql("INSERT INTO audit_records_new SELECT * FROM audit_records")
        conn.exec_driver_sql("DROP TABLE audit_records")
        conn.exec_driver_sql("ALTER TABLE audit_records_new RENAME TO audit_records")


def relink(engine: Engine, seq: int, prev_hash: str) -> None:
    """Point record ``seq`` at ``prev_hash`` and give it a matching record hash."""
    with engine.begin() as conn:
        at, kind, app, actor, payload_hash = conn.execute(
            text(
                "SELECT recorded_at, kind, application_id, actor, payload_hash "
                "FROM audit_records WHERE seq = :seq"
            ),
            {"seq": seq},
        ).one()
        record_hash = compute_record_hash(prev_hash, seq, kind, at, app, actor, payload_hash)
        conn.execute(
            text("UPDATE audit_records SET prev_hash = :prev, record_hash = :h WHERE seq = :seq"),
            {"prev": prev_hash, "h": record_hash, "seq": seq},
        )


def execute(engine: Engine, *statements: str, **params: object) -> None:
    """Run raw SQL in one transaction."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def swap(engine: Engine, a: int, b: int) -> None:
    """Exchange the places of records ``a`` and ``b`` (every column moves but seq)."""
    parking = 10**9
    execute(
        engine,
        "UPDATE audit_records SET seq = :parking WHERE seq = :a",
        "UPDATE audit_records SET seq = :a WHERE seq = :b",
        "UPDATE audit_records SET seq = :b WHERE seq = :parking",
        a=a,
        b=b,
        parking=parking,
    )


def rewrite_from(engine: Engine, seq: int, new_payload: str) -> None:
    """Replace record ``seq``'s payload and recompute every hash after it, as a forger would."""
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT seq, recorded_at, kind, application_id, actor, payload, payload_hash "
                "FROM audit_records WHERE seq >= :seq ORDER BY seq"
            ),
            {"seq": seq},
        ).all()
        prev = GENESIS_HASH if seq == 1 else conn.execute(
            text("SELECT record_hash FROM audit_records WHERE seq = :seq"), {"seq": seq - 1}
        ).scalar_one()
        for number, at, kind, app, actor, payload, payload_hash in _rewritten(
            rows, seq, new_payload
        ):
            record_hash = compute_record_hash(prev, number, kind, at, app, actor, payload_hash)
            conn.execute(
                text(
                    "UPDATE audit_records SET payload = :payload, payload_hash = :payload_hash, "
                    "prev_hash = :prev, record_hash = :record_hash WHERE seq = :seq"
                ),
                {
                    "payload": payload,
                    "payload_hash": payload_hash,
                    "prev": prev,
                    "record_hash": record_hash,
                    "seq": number,
                },
            )
            prev = record_hash


def _rewritten(rows: Iterable, seq: int, new_payload: str) -> Iterable[tuple]:
    for number, at, kind, app, actor, payload, payload_hash in rows:
        if number == seq:
            payload, payload_hash = new_payload, sha256_hex(new_payload.encode("utf-8"))
        yield number, at, kind, app, actor, payload, payload_hash


def delete_and_renumber(engine: Engine, seq: int) -> None:
    """Delete record ``seq``, move every later record down by one and re-chain them all, so
    that the shorter chain is whole again, as a forger would."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = :seq"), {"seq": seq})
        rows = conn.execute(
            text(
                "SELECT seq, recorded_at, kind, application_id, actor, payload_hash "
                "FROM audit_records WHERE seq > :seq ORDER BY seq"
            ),
            {"seq": seq},
        ).all()
        prev = conn.execute(
            text("SELECT record_hash FROM audit_records WHERE seq = :seq"), {"seq": seq - 1}
        ).scalar_one()
        for old, at, kind, app, actor, payload_hash in rows:
            record_hash = compute_record_hash(prev, old - 1, kind, at, app, actor, payload_hash)
            conn.execute(
                text(
                    "UPDATE audit_records SET seq = :new, prev_hash = :prev, "
                    "record_hash = :record_hash WHERE seq = :old"
                ),
                {"new": old - 1, "prev": prev, "record_hash": record_hash, "old": old},
            )
            prev = record_hash
