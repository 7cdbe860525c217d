"""Database helpers shared by the tests and the benchmarks: fresh PostgreSQL schemas, and
the rule that a service CI can run is never skipped there."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

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
