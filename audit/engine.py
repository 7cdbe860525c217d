"""Engines for the audit store: SQLite set up for concurrent writers, PostgreSQL via psycopg 3.

Appends from many processes are serialised by a lock taken at the start of the write
transaction, before the chain head is read:

- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock at once (a plain ``BEGIN``
  would only take it at the first write, after the head was read, and two writers could
  build on the same head). Writers first queue for an OS file lock beside the database
  (:func:`writer_turn`): SQLite's own busy handler retries with sleeps that grow to 100 ms,
  so a process that keeps committing would starve the others;
- PostgreSQL: ``pg_advisory_xact_lock`` on a key derived from the schema name, released by
  the commit or rollback; hosts sharing one database share the lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from audit.errors import UnsupportedDatabase

__all__ = [
    "BUSY_TIMEOUT_S",
    "create_audit_engine",
    "lock_chain",
    "prepare_engine",
    "write_mode",
    "writer_turn",
]

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for the write lock before giving up."""

# Class ids of the two-key advisory locks; the second key is the schema, so that chains in
# different schemas of one database do not wait for each other.
_CHAIN_LOCK = 0x0A_0D_17
_MIGRATION_LOCK = 0x0A_0D_18
_WRITE_OPTION = "flashloan_audit_write"


def create_audit_engine(url: str, **engine_kw: Any) -> Engine:
    """Return an engine for ``url`` (SQLite file or PostgreSQL), ready for the chain."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine_kw.setdefault("connect_args", {}).setdefault("timeout", BUSY_TIMEOUT_S)
    elif backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            # A bare postgresql:// would pick psycopg2, which is not a dependency.
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine_kw.setdefault("pool_pre_ping", True)
    else:
        raise UnsupportedDatabase(
            f"database URL must be sqlite:/// or postgresql://; got {parsed.drivername}://"
        )
    engine = create_engine(parsed, **engine_kw)
    prepare_engine(engine)
    return engine


def prepare_engine(engine: Engine) -> Engine:
    """Install the SQLite connection settings and BEGIN handling; idempotent, a no-op on PG."""
    if engine.dialect.name != "sqlite":
        if engine.dialect.name != "postgresql":
            raise UnsupportedDatabase(
                f"database must be SQLite or PostgreSQL; got {engine.dialect.name}"
            )
        return engine
    if not event.contains(engine, "connect", _sqlite_connect):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module so that _sqlite_begin decides its mode.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the decision it records is answered; NORMAL could
        # lose the last commits to a power cut after their decisions had left the service.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
    statement = f"BEGIN {mode}"
    # Straight to the driver: every transaction starts here, and SQLAlchemy's statement
    # machinery would cost more than the BEGIN itself. A failure (a database locked past
    # the busy timeout) is raised as SQLAlchemy would have raised it.
    dbapi_error = conn.dialect.loaded_dbapi.Error
    driver = conn.connection.dbapi_connection
    assert driver is not None  # None only once the connection is closed or invalidated
    try:
        driver.execute(statement)
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error,
                                  dialect=conn.dialect) from exc


def write_mode(conn: Connection) -> Connection:
    """Prepare ``conn`` for a transaction that appends to the chain.

    SQLite: the transaction starts holding the write lock. PostgreSQL: READ COMMITTED, so that
    the head read after the lock sees the last committed record; under REPEATABLE READ the
    snapshot would date from before the lock was granted.
    """
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="READ COMMITTED")
    return conn.execution_options(**{_WRITE_OPTION: True})


_TURN_WARNED: set[str] = set()
log = logging.getLogger(__name__)

# How often a writer waiting for its turn looks again: short against a write transaction
# (milliseconds), so the lock passes from one process to the next without a gap.
_TURN_POLL_S = 0.0005


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """Hold this host's turn to write to a SQLite file until the block ends; else a no-op.

    Wrap the whole write transaction, commit included. Every writer polls the lock at a
    fixed short interval, so none waits behind a sleep of SQLite's busy handler while
    another process commits again and again (the lock keeps no queue order; the short poll
    is what shares it). Gives up after ``BUSY_TIMEOUT_S`` with TimeoutError ("database is
    locked"), which the service answers with 503. Not re-entrant: a thread holding a turn
    must not open another write transaction on the same database.
    """
    path = _lock_path(engine)
    fd = None
    if path is not None:
        try:
            # Read access is enough for flock, so a lock file first made by another account
            # (an operator's command) still serves.
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            # The turn only makes waiting fair; SQLite's own lock still keeps writers apart.
            if path not in _TURN_WARNED:
                _TURN_WARNED.add(path)
                log.warning("cannot open the writer-turn lock %s (%s); writers wait on "
                            "SQLite's busy handler alone", path, type(exc).__name__)
    if fd is None:
        yield
        return
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"database is locked: no turn to write within {BUSY_TIMEOUT_S:g} s"
                    ) from None
                time.sleep(_TURN_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the only descriptor of the lock releases it


def _lock_path(engine: Engine) -> str | None:
    if engine.dialect.name != "sqlite":
        return None
    return _turn_file(engine.url.database or "")


@lru_cache(maxsize=64)
def _turn_file(database: str) -> str | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return str(Path(database).expanduser().resolve()) + "-writer-turn"


def lock_chain(conn: Connection, *, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Hold the chain lock until the current transaction ends (PostgreSQL; SQLite holds it).

    A writer waits at most ``BUSY_TIMEOUT_S`` for it on either database (``timeout_s`` on
    PostgreSQL when given), then fails: a stalled chain withholds decisions rather than
    queueing them without end.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(1, int(timeout_s * 1000))}ms'")
    _advisory_lock(conn, _CHAIN_LOCK)


def lock_migrations(conn: Connection) -> None:
    """Hold the schema-migration lock until the current transaction ends."""
    _advisory_lock(conn, _MIGRATION_LOCK)


def _advisory_lock(conn: Connection, class_id: int) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:class_id, hashtext(current_schema()))"),
            {"class_id": class_id},
        )
