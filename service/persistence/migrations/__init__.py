"""The database schema: one Alembic history for the audit trail's tables and the service's.

``flashloan db upgrade`` (:func:`upgrade`) is the only step that changes the schema. It takes
the migration lock first (SQLite: the host's writer turn and ``BEGIN IMMEDIATE``; PostgreSQL:
an advisory lock per schema), then reads the revision, applies the missing revisions and
records the new one, all in one transaction: when two upgraders start at once, one upgrades
and the other finds the work done. DDL is transactional on both databases, so a failed
upgrade leaves nothing half applied. Workers only read the revision (:func:`require_head`)
and refuse to serve a database that is not at head, so they need no right to change the
schema.

The revisions live in ``versions/``, written out by hand; never edit one that has shipped.
A database made before Alembic (a ``schema_migrations`` ledger and no ``alembic_version``)
is recognised by :mod:`service.persistence.migrations.legacy` and adopted at the revision that made
the
same schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from audit.engine import (
    create_audit_engine,
    lock_migrations,
    prepare_engine,
    write_mode,
    writer_turn,
)

__all__ = [
    "UPGRADE_COMMAND",
    "SchemaError",
    "SchemaNotAtHead",
    "Upgrade",
    "alembic_config",
    "check",
    "current_revision",
    "head_revision",
    "require_head",
    "upgrade",
]

UPGRADE_COMMAND = "flashloan db upgrade"
_HERE = Path(__file__).resolve().parent

# The tables the revisions create: any of them in a database without a revision means a
# schema nobody can vouch for.
_OWN_TABLES = frozenset(
    {
        "audit_records",
        "audit_reason_codes",
        "audit_checkpoints",
        "api_keys",
        "consents",
        "applications",
        "idempotency_keys",
        "reviews",
        "loans",
        "loan_performance",
    }
)


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to, or is not at, this code's revision."""


class SchemaNotAtHead(SchemaError):
    """The database is not at this code's head revision; ``flashloan db upgrade`` fixes it."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What :func:`upgrade` did: the revision before (None: none), the one after, and the
    revision a database made before Alembic was recognised as (None: it was not one)."""

    before: str | None
    after: str
    adopted: str | None = None

    @property
    def changed(self) -> bool:
        return self.adopted is not None or self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """Return the Alembic configuration; ``connection`` is the one the revisions run on."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """Return the newest revision this code knows."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the history is never empty
        raise SchemaError("no migration revisions found")
    return head


def current_revision(bind: Engine | Connection) -> str | None:
    """Return the database's revision, or None when it has none."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current_revision(conn)
    return MigrationContext.configure(bind).get_current_revision()


def require_head(engine: Engine) -> str:
    """Return the head revision if the database is at it; else raise SchemaNotAtHead."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    if current is not None and not _known(current):
        raise SchemaNotAtHead(_unknown(current, head))
    raise SchemaNotAtHead(
        f"database schema is at revision {current or 'none'}, head is {head}: "
        f'run "{UPGRADE_COMMAND}"'
    )


def upgrade(database: str | Engine) -> Upgrade:
    """Bring the database (a URL or an engine) to head; safe when many start at once."""
    from service.persistence.migrations.legacy import legacy_revision

    head = head_revision()
    with _engine(database) as engine, _migration_transaction(engine) as conn:
        before = current_revision(conn)
        adopted = None
        if before is None:
            adopted = legacy_revision(conn)
            if adopted is None:
                _require_no_own_tables(conn)
            else:
                command.stamp(alembic_config(conn), adopted)
        elif not _known(before):
            raise SchemaError(_unknown(before, head))
        command.upgrade(alembic_config(conn), "head")
        after = current_revision(conn)
    if after != head:  # pragma: no cover - Alembic upgrades to head or raises
        raise SchemaError(f"upgrade ended at revision {after}, not at head {head}")
    return Upgrade(before=before, after=head, adopted=adopted)


def check(database: str | Engine) -> None:
    """Raise alembic's AutogenerateDiffsDetected if the tables' models and the revisions differ.

    The database must be at head; it is only read.
    """
    with _engine(database) as engine, engine.connect() as conn:
        command.check(alembic_config(conn))


def _known(revision: str) -> bool:
    return any(script.revision == revision for script in _script().walk_revisions())


def _unknown(revision: str, head: str) -> str:
    return (
        f"database schema is at revision {revision}, which this code does not know "
        f"(head is {head}): it was upgraded by newer code"
    )


def _require_no_own_tables(conn: Connection) -> None:
    found = sorted(_OWN_TABLES & set(inspect(conn).get_table_names()))
    if found:
        raise SchemaError(
            f"database has tables ({', '.join(found)}) but no schema revision and no "
            "ledger of the earlier migrations; refusing to guess what made them"
        )


@contextmanager
def _engine(database: str | Engine) -> Iterator[Engine]:
    if isinstance(database, Engine):
        yield prepare_engine(database)
        return
    engine = create_audit_engine(database)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the migration lock; committed when the block ends."""
    with writer_turn(engine), engine.connect() as conn:
        write_mode(conn)
        with conn.begin():
            lock_migrations(conn)
            yield conn
