"""The console on SQLite through Flask's test client: a signed-in browser per role, and data.

A console whose data costs time to make (decisions, a finished backtest) can be made once
for a module and kept as a closed folder (:class:`Saved`): the tests that only read it share
one console opened on a copy, and a test that changes it opens a copy of its own.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from datasources import SCOPES
from datasources.stub.world import population_ids
from service.usecases.api_keys import create_key
from tests.apps import build_app
from tests.databases import migrate

ROLES = ("channel", "risk_officer", "auditor", "admin", "servicing")
CHANNEL = "bank-app"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BACKTEST_POLL_S = 0.1
BACKTEST_WAIT_S = 120.0
T = TypeVar("T")


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


class ConsoleUser:
    """One browser (its own cookie jar) on the console."""

    def __init__(self, app, key: str | None = None) -> None:
        self.app = app
        self.http = app.test_client()
        self.key = key

    def sign_in(self, key: str | None = None, **extra):
        """Post the sign-in form with the form's own CSRF token; return the response."""
        page = self.http.get("/console/sign-in")
        return self.http.post("/console/sign-in", data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "api_key": key if key is not None else self.key, **extra})

    def csrf(self) -> str:
        """The session's CSRF token, as a signed-in page carries it."""
        return csrf_of(self.get("/console/").get_data(as_text=True))

    def get(self, path: str, **kw):
        # Buffered, so that a streamed download is read whole and its generator closed.
        return self.http.get(path, buffered=True, **kw)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kw):
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf())
        return self.http.post(path, data=body, **kw)

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


class Console:
    """An app with one API key per role, a channel's API calls, and signed-in users."""

    def __init__(self, app, keys: dict[str, str] | None = None) -> None:
        """``keys``: the keys already in the app's database (of a :class:`Saved` console);
        by default one is made per role."""
        self.app = app
        self.wired = app.extensions["flashloan"]
        engine = self.wired.store.engine
        self.keys = dict(keys) if keys is not None else {
            role: create_key(engine, role, CHANNEL if role == "channel" else role)
            for role in ROLES}
        self.api = app.test_client()

    def user(self, role: str | None = None) -> ConsoleUser:
        """A new browser; signed in when ``role`` is given."""
        user = ConsoleUser(self.app, self.keys.get(role) if role else None)
        if role is not None:
            response = user.sign_in()
            assert response.status_code == 303, response.get_data(as_text=True)
        return user

    def key_id(self, role: str) -> str:
        """The id of ``role``'s key (``fl_<id>_<secret>``), as the audit log names it."""
        return self.keys[role].split("_", 2)[1]

    def call(self, method: str, path: str, role: str = "channel", body=None):
        return self.api.open(path, method=method, json=body,
                             headers={"Authorization": f"Bearer {self.keys[role]}"})

    def apply(self, national_id: str, **request) -> dict:
        """Consent and apply as the channel (for ¥20,000 over 12 months unless ``request``
        says otherwise); return the decision."""
        now = datetime.now(UTC)
        consent = self.call("POST", "/v1/consents", body={
            "national_id": national_id, "scopes": list(SCOPES), "purpose": "credit_application",
            "granted_at": now.isoformat(), "expires_at": (now + timedelta(days=30)).isoformat(),
            "text_version": "v1", "channel": CHANNEL})
        assert consent.status_code == 201, consent.get_json()
        decided = self.call("POST", "/v1/applications", body={
            "applicant": {"national_id": national_id, "name": "张三", "mobile": "13812348000"},
            "request": {"amount": 20000, "term_months": 12, "purpose": "travel", **request},
            "consent_id": consent.get_json()["consent_id"]})
        assert decided.status_code == 201, decided.get_json()
        return decided.get_json()

    def request_review(self, application_id: str, reason: str = "我的收入比记录的高，请人工复核"):
        response = self.call("POST", f"/v1/applications/{application_id}/review-requests",
                             body={"reason": reason})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def records(self, kind: str) -> list:
        from audit import AuditQuery

        return list(self.wired.store.iter_records(AuditQuery(kinds=(kind,))))


@pytest.fixture
def people() -> list[str]:
    return population_ids(60, 2024)


DATABASE_FILE = "flashloan.db"


def open_console(folder: Path, keys: dict[str, str] | None = None, **settings: Any) -> Console:
    """A console on the SQLite file ``flashloan.db`` in ``folder``, which is also its var
    folder: a new file is made at the migrations' head; ``keys`` are those of a saved one."""
    url = f"sqlite:///{folder / DATABASE_FILE}"
    if not (folder / DATABASE_FILE).exists():
        migrate(url)
    return Console(build_app({"database_url": url, "env": "test", "var_dir": folder,
                              **settings}), keys)


def close_console(console: Console) -> None:
    """Stop the console's app: its backtests, writers and connections (SQLite's log is
    folded into the file as the last connection closes)."""
    console.wired.close()


@contextmanager
def console_in(folder: Path, keys: dict[str, str] | None = None,
               **settings: Any) -> Iterator[Console]:
    """:func:`open_console`, closed afterwards."""
    console = open_console(folder, keys, **settings)
    try:
        yield console
    finally:
        close_console(console)


@dataclass(frozen=True)
class Saved:
    """A console's folder (database and var folder), closed, and its keys: made once, then
    opened as copies, so that what one test writes no other test sees."""

    folder: Path
    keys: dict[str, str]
    settings: dict[str, Any]

    def copy(self, folder: Path) -> Saved:
        """The same console, copied to ``folder`` (which must not exist)."""
        shutil.copytree(self.folder, folder)
        return Saved(folder, self.keys, self.settings)

    def open_copy(self, folder: Path, **settings: Any) -> Console:
        """A console on a copy in ``folder`` (which must not exist), with its settings and
        ``settings``; close it when done."""
        copied = self.copy(folder)
        return open_console(copied.folder, copied.keys, **{**copied.settings, **settings})


def save_console(folder: Path, make: Callable[[Console], T], keys: dict[str, str] | None = None,
                 **settings: Any) -> tuple[Saved, T]:
    """Open a console on ``folder`` (see :func:`open_console`), let ``make`` put data in it,
    close it and keep it; return it and what ``make`` returned."""
    with console_in(folder, keys, **settings) as console:
        made = make(console)
    return Saved(folder, dict(console.keys), settings), made


@pytest.fixture
def make_console(tmp_path, sqlite_url) -> Iterator:
    made: list[Console] = []

    def build(url: str | None = None, *, copy_of: Saved | None = None,
              **settings) -> Console:
        """A console on ``url`` (by default the test's SQLite file), or on a copy of a saved
        one of its own."""
        if copy_of is not None:
            made.append(copy_of.open_copy(tmp_path / f"copy-{len(made)}", **settings))
            return made[-1]
        migrate(url or sqlite_url)
        app = build_app({"database_url": url or sqlite_url, "env": "test",
                          "var_dir": tmp_path, **settings})
        made.append(Console(app))
        return made[-1]

    yield build
    for console in made:
        close_console(console)


@pytest.fixture
def console(make_console) -> Console:
    return make_console()


def decide_a_dozen(console: Console, people: list[str]) -> tuple[Console, list[dict]]:
    answers = [console.apply(nid) for nid in people[:12]]
    outcomes = {a["status"] for a in answers}
    assert {"approved", "declined"} <= outcomes, outcomes
    return console, answers


@pytest.fixture
def decided(console, people) -> tuple[Console, list[dict]]:
    """A console with a dozen decisions, at least one approved and one declined."""
    return decide_a_dozen(console, people)


@pytest.fixture
def decided_on_any_db(make_console, database_url, people) -> tuple[Console, list[dict]]:
    """The same, once on SQLite and once on PostgreSQL."""
    return decide_a_dozen(make_console(database_url), people)


def first(answers: list[dict], status: str) -> dict:
    return next(a for a in answers if a["status"] == status)


def finished_backtest(console: Console, backtest_id: str) -> dict:
    """The backtest once it is done or failed."""
    deadline = time.monotonic() + BACKTEST_WAIT_S
    while time.monotonic() < deadline:
        job = console.wired.backtests.get(backtest_id)
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(BACKTEST_POLL_S)
    raise AssertionError(f"backtest {backtest_id} did not finish in {BACKTEST_WAIT_S} s")


def run_backtest(console: Console, strategy: str = "v1/2026.11") -> dict:
    """A backtest of ``strategy`` over the whole log, asked of the desk, once it is done."""
    from scoring.governance.strategy import Strategy
    from service.usecases.backtests.run import Backtest

    job = console.wired.backtests.request(Backtest(Strategy.parse(strategy)),
                                          f"risk_officer:{console.key_id('risk_officer')}")
    done = finished_backtest(console, job["backtest_id"])
    assert done["status"] == "done", done
    return done
