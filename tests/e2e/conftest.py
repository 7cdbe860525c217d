"""End-to-end fixtures: the real service under gunicorn with two workers, on SQLite and PostgreSQL.

A deployment is one database shared by two gunicorn servers, as several hosts share one
PostgreSQL in production:

- ``main``: every source answers, staged applicants come from a stub fixtures file;
- ``degraded`` (one worker): the same, except that the credit report hangs and the overall
  deadline is 1.5 s, so that every application it decides is deferred.

Both append to one audit chain. Deployments live for the whole session (starting servers is
the slow part); tests make their own consents and applications and look only at those.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.databases import fresh_postgres_schema, migrate
from tests.e2e.applicants import Applicant, application_body, consent_body, write_fixtures
from tests.e2e.gunicorn_server import GunicornServer

PII_KEY = "e2e-pii-key-3f9a1c7e5b2d4068a1f3c5e7b9d20468"
CHANNEL = "e2e-bank-a"
OTHER_CHANNEL = "e2e-bank-b"
DEGRADED_DEADLINE_S = 1.5
# How long a worker trusts a key it has checked: short, so that test_keys sees a revocation
# reach every worker within the deployment's own tests.
KEY_CACHE_S = 1.0
HTTP_TIMEOUT_S = 60.0

# caller -> (role, key name); both channels are "channel" keys of different front-ends.
KEYS = {
    "channel": ("channel", CHANNEL),
    "other_channel": ("channel", OTHER_CHANNEL),
    "risk_officer": ("risk_officer", "e2e-risk-officer"),
    "auditor": ("auditor", "e2e-auditor"),
    "admin": ("admin", "e2e-admin"),
    "servicing": ("servicing", "e2e-servicing"),
}


class Client:
    """Calls one server as one caller (an API key, or none)."""

    def __init__(self, session: requests.Session, base_url: str, key: str | None) -> None:
        self.session = session
        self.base_url = base_url
        self.key = key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return {**headers, **(extra or {})}

    def request(self, method: str, path: str, *, json: Any = None,
                headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.request(method, self.base_url + path, json=json,
                                    headers=self.headers(headers), timeout=HTTP_TIMEOUT_S)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)


@dataclass
class Deployment:
    """One database, two gunicorn servers on it, API keys, and a way into the database."""

    backend: str
    database_url: str
    main: GunicornServer
    degraded: GunicornServer
    keys: dict[str, str]
    session: requests.Session
    store: Any  # audit.AuditStore on the deployment's database, for checks behind the API
    servers: tuple[GunicornServer, ...] = field(init=False)
    log_checked: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.servers = (self.main, self.degraded)
        self.log_checked = {server.name: 0 for server in self.servers}

    def client(self, caller: str | None, server: GunicornServer | None = None) -> Client:
        """A client of ``server`` (the main one by default) holding ``caller``'s key."""
        key = None if caller is None else self.keys[caller]
        return Client(self.session, (server or self.main).base_url, key)

    def logs(self) -> str:
        return "\n".join(server.log_text() for server in self.servers)

    def unchecked_tracebacks(self) -> list[str]:
        """Each server's log around the first traceback written since the last call."""
        found = []
        for server in self.servers:
            text, self.log_checked[server.name] = server.log_since(
                self.log_checked[server.name])
            if "Traceback" in text:
                start = max(0, text.index("Traceback") - 2000)
                found.append(f"{server.name}: {text[start:start + 8000]}")
        return found


def create_keys(database_url: str) -> dict[str, str]:
    """Upgrade the database to head and create one API key per caller; return the keys."""
    from audit import AuditStore
    from service.usecases.api_keys import create_key

    migrate(database_url)
    store = AuditStore.from_url(database_url)
    try:
        return {caller: create_key(store.engine, role, name)
                for caller, (role, name) in KEYS.items()}
    finally:
        store.dispose()


def _stop(server: GunicornServer, codes: dict[str, int | None]) -> None:
    codes[server.name] = server.stop()


@pytest.fixture(scope="session",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The service deployed on SQLite, then on PostgreSQL."""
    from audit import AuditStore

    backend = request.param
    workdir = tmp_path_factory.mktemp(f"e2e-{backend}")
    codes: dict[str, int | None] = {}
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'flashloan.db'}"
        else:
            url = stack.enter_context(fresh_postgres_schema(
                request.getfixturevalue("postgres_server"), "e2e"))
        keys = create_keys(url)
        common = {
            "FLASHLOAN_ENV": "test",
            "FLASHLOAN_DATABASE_URL": url,
            "FLASHLOAN_PII_KEY": PII_KEY,
            "FLASHLOAN_STUB_FIXTURES": str(write_fixtures(workdir / "fixtures.json")),
            # Rate limits are not under test here (test_rate_limits has servers of its own);
            # schemathesis alone sends hundreds of calls, the role matrix many without a key.
            "FLASHLOAN_RATE_LIMIT": "100000/minute",
            "FLASHLOAN_AUTH_FAILURE_LIMIT": "100000/minute",
            "FLASHLOAN_KEY_CACHE_S": str(KEY_CACHE_S),
        }
        main = GunicornServer("main", workdir, common)
        degraded = GunicornServer("degraded", workdir, {
            **common,
            "FLASHLOAN_STUB_FAULTS": "credit_report=hang",
            "FLASHLOAN_DEADLINE_S": str(DEGRADED_DEADLINE_S),
        }, workers=1)
        for server in (main, degraded):
            stack.callback(_stop, server, codes)
            server.spawn()
        for server in (main, degraded):
            server.wait_ready()
        store = AuditStore.from_url(url)
        stack.callback(store.dispose)
        session = stack.enter_context(requests.Session())
        yield Deployment(backend, url, main, degraded, keys, session, store)
    for server in (main, degraded):
        code = codes[server.name]
        assert code == 0, f"{server.name} exited with {code} on SIGTERM:\n{server.log_text()}"


@pytest.fixture(autouse=True)
def _no_server_tracebacks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose requests (or its fixtures') made a server log a traceback."""
    yield
    if "deployment" not in request.fixturenames:
        return
    found = request.getfixturevalue("deployment").unchecked_tracebacks()
    assert not found, "a server logged a traceback:\n" + "\n".join(found)


# -- steps every test module takes -----------------------------------------------------------

def assert_envelope(response: requests.Response, status: int, code: str | None = None) -> dict:
    """Assert an error answer in the one envelope; return its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["fields"], dict), error
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v)
               for v in error["fields"].values()), error
    if code is not None:
        assert error["code"] == code, error
    return error


def record_consent(client: Client, applicant: Applicant, channel: str = CHANNEL) -> str:
    """Record a live consent to every source and return its id."""
    response = client.post("/v1/consents", json=consent_body(applicant, channel))
    assert response.status_code == 201, response.text
    return response.json()["consent_id"]


def apply(client: Client, applicant: Applicant, consent_id: str,
          **request: Any) -> requests.Response:
    """Post an application; return the raw response."""
    return client.post("/v1/applications",
                       json=application_body(applicant, consent_id, **request))


def count_rows(store: Any, table: str, where: str = "", **params: Any) -> int:
    """Count the rows of a table of the deployment's database."""
    from sqlalchemy import text

    sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")
    with store.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())

