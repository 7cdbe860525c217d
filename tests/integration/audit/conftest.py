"""Stores on real databases for the audit integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from audit.store import AuditStore
from service.migrations import upgrade


@pytest.fixture
def make_store(database_url: str) -> Iterator[Callable[..., AuditStore]]:
    """Open stores on the test database (SQLite, then PostgreSQL), upgraded to head; dispose
    them afterwards."""
    upgrade(database_url)
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
