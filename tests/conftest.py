"""Fixtures shared by every test layer: databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import (
    IN_CI,
    POSTGRES_URL,
    fresh_postgres_schema,
    postgres_problem,
    unavailable,
)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL; skipped locally when unreachable, a failure under CI."""
    problem = postgres_problem()
    if problem is not None:
        unavailable(problem)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    with fresh_postgres_schema(postgres_server) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A URL of a fresh SQLite file database."""
    return f"sqlite:///{tmp_path / 'flashloan.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """Each test that asks for it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


# Tests that share a run-wide fixture too costly to build twice (a deployment, a browser
# site, trained models, a Dask cluster) run on one xdist worker: by folder, and the
# end-to-end tests by database, so that each worker deploys the service once.
LOAD_GROUPS = {
    "tests/browser/": "browser",
    "tests/integration/scoring/": "models",
}


def _load_group(item: pytest.Item) -> str | None:
    path = item.nodeid.split("::", 1)[0]
    if path.startswith("tests/e2e/"):
        params = getattr(item, "callspec", None)
        backend = params.params.get("deployment") if params is not None else None
        return f"e2e-{backend}" if backend else "e2e"
    return next((group for prefix, group in LOAD_GROUPS.items() if path.startswith(prefix)),
                None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test of a load group for ``--dist loadgroup``."""
    for item in items:
        group = _load_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure: every test CI can run must run there."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"
    return report
