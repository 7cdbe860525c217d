"""Database helpers shared by the tests and the benchmarks: fresh PostgreSQL schemas, and
the rule that a service CI can run is never skipped there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

POSTGRES_URL = os.environ.get(
    "FLASHLOAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def postgres_problem(url: str = POSTGRES_URL) -> str | None:
    """Return why PostgreSQL at ``url`` cannot be used, or None when it can."""
    import psycopg

    try:
        with psycopg.connect(_plain(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {url} is not reachable: {exc}".splitlines()[0]
    return None


@contextmanager
def fresh_postgres_schema(url: str = POSTGRES_URL, prefix: str = "t") -> Iterator[str]:
    """Yield a URL whose search_path is a new schema; drop the schema afterwards."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(_plain(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def unavailable(reason: str) -> NoReturn:
    """Skip for a missing service locally, with the reason; fail under CI=true."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: tests that need it must run)")
    pytest.skip(reason)


# A database migrated once per process and copied for each test that needs one at head: a
# SQLite file copied, a PostgreSQL schema's dump replayed into the test's own schema. The
# migrations themselves are tested on empty databases (tests/integration/migrations).
_TEMPLATES: dict[str, Any] = {}
_TEMPLATE_LOCK = threading.Lock()


def migrate(url: str) -> None:
    """Bring the empty database at ``url`` (a fresh SQLite file, or the fresh schema of
    :func:`fresh_postgres_schema`) to the migrations' head, as ``flashloan db upgrade`` does,
    by copying a database migrated once per process. A database that is not empty is
    upgraded as the command would (a second call does nothing)."""
    from service.persistence.migrations import upgrade

    if url.startswith("sqlite:///"):
        target = Path(url.removeprefix("sqlite:///"))
        if target.exists() and target.stat().st_size:
            upgrade(url)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_template(), target)
        return
    schema = _schema_of(url)
    dump = _postgres_template(url.split("?", 1)[0])
    import psycopg

    with psycopg.connect(_plain(url.split("?", 1)[0]), autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                              (schema,)).fetchone()
    if tables and tables[0]:
        upgrade(url)
        return

    with (psycopg.connect(_plain(url.split("?", 1)[0]), autocommit=True) as conn,
          conn.transaction()):
        # Unqualified names in the triggers' functions are found on the search path.
        conn.execute(f'SET LOCAL search_path TO "{schema}"')
        conn.execute("SET LOCAL check_function_bodies = false")
        conn.execute(dump.replace(_TEMPLATE_SCHEMA, schema).encode("utf-8"))


_TEMPLATE_SCHEMA = f"template_{uuid.uuid4().hex[:12]}"


def _schema_of(url: str) -> str:
    found = re.search(r"search_path%3D([A-Za-z0-9_]+)", url)
    if found is None:
        raise ValueError(f"{url} names no schema of its own (fresh_postgres_schema gives one)")
    return found.group(1)


def _sqlite_template() -> Path:
    from service.persistence.migrations import upgrade

    with _TEMPLATE_LOCK:
        if "sqlite" not in _TEMPLATES:
            folder = Path(tempfile.mkdtemp(prefix="flashloan-template-"))
            path = folder / "template.db"
            upgrade(f"sqlite:///{path}")
            _TEMPLATES["sqlite"] = path
        return _TEMPLATES["sqlite"]


def _postgres_template(server_url: str) -> str:
    """The SQL that rebuilds a migrated schema (its tables, indexes and rows), schema names
    written as the template's: pg_dump of a schema migrated once."""
    from service.persistence.migrations import upgrade

    with _TEMPLATE_LOCK:
        if server_url not in _TEMPLATES:
            import psycopg

            plain = _plain(server_url)
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{_TEMPLATE_SCHEMA}"')
            try:
                sep = "&" if "?" in server_url else "?"
                upgrade(f"{server_url}{sep}options=-csearch_path%3D{_TEMPLATE_SCHEMA}")
                dumped = subprocess.run(
                    ["pg_dump", "--schema", _TEMPLATE_SCHEMA, "--no-owner", "--no-privileges",
                     "--inserts", "--no-comments", plain],
                    check=True, capture_output=True, text=True).stdout
            finally:
                with psycopg.connect(plain, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{_TEMPLATE_SCHEMA}" CASCADE')
            # The test's schema exists already; the dump's settings would reach past it.
            kept = [line for line in dumped.splitlines()
                    if not line.startswith(("CREATE SCHEMA", "SET ", "SELECT pg_catalog.set_config",
                                            "\\"))]
            _TEMPLATES[server_url] = "\n".join(kept)
        return _TEMPLATES[server_url]
