"""Stores on real databases for the audit integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from audit.store import AuditStore
from service.cli.main import main
from tests.databases import migrate

PII_KEY = "test-pii-key-0123456789abcdef0123456789"


@pytest.fixture
def make_store(database_url: str) -> Iterator[Callable[..., AuditStore]]:
    """Open stores on the test database (SQLite, then PostgreSQL), upgraded to head; dispose
    them afterwards."""
    migrate(database_url)
    opened: list[AuditStore] = []

    def make(**options) -> AuditStore:
        store = AuditStore.from_url(database_url, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.dispose()


@pytest.fixture
def store(make_store: Callable[..., AuditStore]) -> AuditStore:
    """An empty store on the test database, at head."""
    return make_store()


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Callable[..., Result]:
    """Run ``flashloan audit ...`` with settings pointing at the test database."""
    env = {
        "FLASHLOAN_DATABASE_URL": database_url,
        "FLASHLOAN_VAR_DIR": str(tmp_path / "var"),
        "FLASHLOAN_PII_KEY": PII_KEY,
        "FLASHLOAN_SIGNING_KEY": None,
        "FLASHLOAN_ENV": None,
    }

    def run(*args: str, **overrides: str) -> Result:
        runner = CliRunner(env=env | overrides)
        return runner.invoke(main, ["audit", *args], catch_exceptions=False)

    return run
