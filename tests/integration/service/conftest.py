"""An app on a real database (SQLite, or PostgreSQL where asked) with stub sources."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask, Response, request

from datasources import SCOPES
from datasources.stub.world import population_ids
from service.usecases.api_keys import create_key
from tests.apps import build_app
from tests.databases import migrate

ROLES = ("channel", "risk_officer", "auditor", "admin", "servicing")


class Client:
    """The Flask test client with one API key per role and shortcuts for the flow."""

    def __init__(self, app) -> None:
        self.app = app
        self.http = app.test_client()
        engine = app.extensions["flashloan"].store.engine
        self.keys = {role: create_key(engine, role, "bank-app" if role == "channel" else role)
                     for role in ROLES}
        self.keys["other_channel"] = create_key(engine, "channel", "other-bank")

    def headers(self, who: str | None, **extra: str) -> dict[str, str]:
        h = dict(extra)
        if who is not None:
            h["Authorization"] = f"Bearer {self.keys[who]}"
        return h

    def get(self, path: str, who: str | None = "channel", **kw):
        return self.http.get(path, headers=self.headers(who), **kw)

    def post(self, path: str, body, who: str | None = "channel", headers=None, **kw):
        return self.http.post(path, json=body, headers={**self.headers(who), **(headers or {})},
                              **kw)

    def delete(self, path: str, who: str | None = "channel"):
        return self.http.delete(path, headers=self.headers(who))

    def consent(self, national_id: str, scopes=SCOPES, who: str = "channel",
                channel: str = "bank-app", **changes) -> dict:
        now = datetime.now(UTC)
        body = {"national_id": national_id, "scopes": list(scopes),
                "purpose": "credit_application", "granted_at": now.isoformat(),
                "expires_at": (now + timedelta(days=30)).isoformat(), "text_version": "v1",
                "channel": channel, **changes}
        r = self.post("/v1/consents", body, who=who)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    @staticmethod
    def application(national_id: str, consent_id: str, **request) -> dict:
        return {"applicant": {"national_id": national_id, "name": "张三",
                              "mobile": "13812348000"},
                "request": {"amount": 20000, "term_months": 12, "purpose": "travel",
                            **request},
                "consent_id": consent_id}

    def apply(self, national_id: str, who: str = "channel", **request):
        consent = self.consent(national_id)
        return self.post("/v1/applications",
                         self.application(national_id, consent["consent_id"], **request),
                         who=who)


@pytest.fixture
def people() -> list[str]:
    return population_ids(40, 99)


def openapi_path(rule: str) -> str:
    """The OpenAPI path of a Flask URL rule: ``/v1/audit/records/<int:seq>`` →
    ``/v1/audit/records/{seq}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def record_answers(app: Flask) -> list[tuple[str, str, int]]:
    """Record the operation (method, OpenAPI path) and status of every answer ``app`` gives."""
    answers: list[tuple[str, str, int]] = []

    @app.after_request
    def _record(response: Response) -> Response:
        if request.url_rule is not None:
            answers.append((request.method.lower(), openapi_path(request.url_rule.rule),
                            response.status_code))
        return response

    return answers


def undocumented_answers(app: Flask, answers: list[tuple[str, str, int]]) -> set:
    """The answers of documented operations whose status their operation does not document."""
    spec = app.test_client().get("/openapi.json").get_json()
    return {(method, path, status) for method, path, status in answers
            if method in spec["paths"].get(path, {})
            and str(status) not in spec["paths"][path][method]["responses"]}


def _app(url: str, tmp_path, **settings):
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps(settings.pop("fixtures", {})), encoding="utf-8")
    migrate(url)
    app = build_app({"database_url": url, "env": "test", "var_dir": tmp_path,
                      "stub_fixtures": str(fixtures), **settings})
    return app


@pytest.fixture
def make_client(tmp_path, sqlite_url):
    """Build a client on SQLite with extra settings (fixtures, faults, deadline).

    Every answer the tests get from an operation of the API must be one that the OpenAPI
    document lists for it: checked once the test is done.
    """
    made = []

    def build(url: str | None = None, **settings) -> Client:
        app = _app(url or sqlite_url, tmp_path, **settings)
        made.append((app, record_answers(app)))
        return Client(app)

    yield build
    undocumented = set()
    for app, answers in made:
        undocumented |= undocumented_answers(app, answers)
        app.extensions["flashloan"].close()
    assert not undocumented, f"answers the API document does not list: {sorted(undocumented)}"


@pytest.fixture
def client(make_client) -> Client:
    return make_client()


@pytest.fixture
def any_db_client(make_client, database_url) -> Client:
    """A client once on SQLite and once on PostgreSQL."""
    return make_client(database_url)
