"""Databases for the migration tests: empty ones, and ones made by the earlier migrations.

``legacy/`` holds two databases made by the hand-written migrations that Alembic replaced
(their ``schema_migrations`` ledger says audit 1, service 1 and 2), each with a few real
records: API keys, consents (one withdrawn), four decided applications, a review request and
the audit chain over all of them. ``sqlite.sql`` is SQLite's own dump of such a file;
``postgresql.sql`` is the DDL those migrations ran, followed by the rows. The JSON beside each
says what is in it: the keys' secrets, the ids, the length and head of the chain.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from audit.engine import create_audit_engine

LEGACY = Path(__file__).resolve().parent / "legacy"


@dataclass(frozen=True)
class LegacyDatabase:
    """A database made by the earlier migrations, and what the fixture says is in it."""

    url: str
    backend: str
    contents: dict[str, Any]


def backend_of(url: str) -> str:
    """Return ``sqlite`` or ``postgresql``."""
    return make_url(url).get_backend_name()


def load_legacy(url: str) -> LegacyDatabase:
    """Fill the empty database at ``url`` from the fixture of its kind."""
    backend = backend_of(url)
    script = (LEGACY / f"{backend}.sql").read_text(encoding="utf-8")
    if backend == "sqlite":
        with sqlite3.connect(make_url(url).database or "") as conn:
            conn.executescript(script)
        conn.close()
    else:
        engine = create_audit_engine(url)
        try:
            raw = engine.raw_connection()
            try:
                # No parameters: psycopg sends the script as it is, statements and all.
                raw.driver_connection.execute(script)  # type: ignore[union-attr]
                raw.commit()
            finally:
                raw.close()
        finally:
            engine.dispose()
    contents = json.loads((LEGACY / f"{backend}.json").read_text(encoding="utf-8"))
    return LegacyDatabase(url, backend, contents)


@pytest.fixture
def legacy(database_url: str) -> LegacyDatabase:
    """A database made by the earlier migrations: on SQLite, then on PostgreSQL."""
    return load_legacy(database_url)


@pytest.fixture
def engine(database_url: str):
    """An engine on the test's database, disposed of afterwards."""
    engine = create_audit_engine(database_url)
    yield engine
    engine.dispose()
