"""Who may open which console page: sign-in, the role matrix, CSRF, the session cookie."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from datasources.stub.world import population_ids
from service.domain.encoding import now_text
from service.domain.permissions import roles_holding
from service.persistence.tables import api_keys
from tests.databases import migrate
from tests.integration.console.conftest import (
    Console,
    Saved,
    close_console,
    decide_a_dozen,
    finished_backtest,
    first,
    run_backtest,
    save_console,
)

# The module's consoles are made once (``reviewed_world``, ``backtested_world``): under
# ``--dist loadgroup`` its tests run on one xdist worker.
pytestmark = pytest.mark.xdist_group("console-access")

APPLICATION_PAGES = ("/console/applications", "/console/applications/{application_id}")
REVIEW_PAGES = ("/console/reviews", "/console/reviews?state=resolved")
AUDIT_PAGES = ("/console/audit", "/console/audit/records/1", "/console/audit/verify",
               "/console/audit/export.jsonl", "/console/audit/export.csv")
MODEL_PAGES = ("/console/models", "/console/models/v1")
# Realised default against predicted PD: open to the roles that read model cards.
OUTCOME_PAGES = ("/console/outcomes",)
MONITORING_PAGES = ("/console/monitoring", "/console/monitoring?window=7d")
# Read by risk officers and auditors; started by risk officers alone.
BACKTEST_PAGES = ("/console/backtests", "/console/backtests/{backtest_id}",
                  "/console/backtests/{backtest_id}/report.html")
EVERYONE = ("/console/",)

# What the API lets a role read, the console shows it, and nothing more. role ->
# (applications and their explanations, the review queue, the audit log, models and
# monitoring, backtests, may resolve a review and start a backtest)
MATRIX = {
    "risk_officer": (200, 200, 403, 200, 200, True),
    "auditor": (200, 403, 200, 200, 200, False),
    "admin": (403, 403, 403, 200, 403, False),
}
# The menu's sections, each by the page it opens.
SECTIONS = ("/console/applications", "/console/reviews", "/console/monitoring",
            "/console/models", "/console/outcomes", "/console/backtests", "/console/audit",
            "/console/audit/verify")
# Each console page and the API operation that reads or does the same: both answer the same
# roles (those that may sign in to the console).
COUNTERPARTS = {
    "console.applications": ("GET", "/v1/applications/<application_id>"),
    "console.application": ("GET", "/v1/applications/<application_id>/explanation"),
    "console.review_queue": ("GET", "/v1/reviews"),
    "console.resolve_review": ("POST", "/v1/reviews/<review_id>/resolution"),
    "console.audit_search": ("GET", "/v1/audit/records"),
    "console.audit_record": ("GET", "/v1/audit/records/<int:seq>"),
    "console.audit_verify": ("GET", "/v1/audit/verify"),
    "console.audit_export": ("GET", "/v1/audit/export"),
    "console.models": ("GET", "/v1/models"),
    "console.model": ("GET", "/v1/models/<version>"),
    "console.outcomes": ("GET", "/v1/monitoring/calibration"),
    "console.monitoring": ("GET", "/v1/monitoring/drift"),
    "console.backtests": ("GET", "/v1/backtests"),
    "console.backtest": ("GET", "/v1/backtests/<backtest_id>"),
    "console.backtest_report": ("GET", "/v1/backtests/<backtest_id>/report"),
    "console.start_backtest": ("POST", "/v1/backtests"),
    "console.cancel_backtest": ("DELETE", "/v1/backtests/<backtest_id>"),
}


@dataclass(frozen=True)
class World:
    """A console of the module's, made once: a dozen decisions and an open review of a
    decline, and perhaps a finished backtest of the champion."""

    saved: Saved
    declined: dict[str, Any]
    review: dict[str, Any]
    backtest_id: str = "bt_none"


@pytest.fixture(scope="module")
def reviewed_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    def make(console: Console) -> tuple[dict, dict]:
        _, answers = decide_a_dozen(console, population_ids(60, 2024))
        declined = first(answers, "declined")
        return declined, console.request_review(declined["application_id"])

    saved, (declined, review) = save_console(tmp_path_factory.mktemp("reviewed"), make)
    return World(saved, declined, review)


@pytest.fixture(scope="module")
def backtested_world(reviewed_world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    # A backtest runs in a process of its own and takes seconds: one serves the module.
    copy = reviewed_world.saved.copy(tmp_path_factory.mktemp("backtested") / "console")
    saved, done = save_console(copy.folder, run_backtest, copy.keys)
    return replace(reviewed_world, saved=saved, backtest_id=done["backtest_id"])


def reading(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A console on a copy of ``world``, shared by the module's tests that only read it."""
    console = world.saved.open_copy(tmp_path_factory.mktemp("reading") / "console")
    yield console
    close_console(console)


@pytest.fixture(scope="module")
def reading_reviewed(reviewed_world: World, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Console]:
    yield from reading(reviewed_world, tmp_path_factory)


@pytest.fixture(scope="module")
def reading_backtested(backtested_world: World, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[Console]:
    yield from reading(backtested_world, tmp_path_factory)


@pytest.fixture
def reviewed(reviewed_world: World, reading_reviewed: Console):
    """Decisions, and an open review of a decline (the module's: tests that use it only read)."""
    return reading_reviewed, reviewed_world.declined, reviewed_world.review


@pytest.fixture
def backtested(backtested_world: World, reading_backtested: Console, make_console
               ) -> Callable[..., tuple[Console, dict[str, Any], dict[str, Any], str]]:
    """The same, and a finished backtest of the champion: the module's console, shared by the
    tests that only read it, or with ``writes=True`` a copy of the test's own."""
    world = backtested_world

    def opened(*, writes: bool = False):
        console = make_console(copy_of=world.saved) if writes else reading_backtested
        return console, world.declined, world.review, world.backtest_id

    return opened


def _pages(paths, application_id, backtest_id="bt_none"):
    return [p.format(application_id=application_id, backtest_id=backtest_id) for p in paths]


@pytest.mark.parametrize("role", sorted(MATRIX))
def test_the_role_matrix_of_console_pages(backtested, role):
    applications, queue, audit, models, backtests, may_change = MATRIX[role]
    # A role that may change things (resolve the review, start a backtest) gets its own copy.
    console, declined, review, backtest_id = backtested(writes=may_change)
    user = console.user(role)
    aid = declined["application_id"]
    for paths, expected in ((APPLICATION_PAGES, applications), (REVIEW_PAGES, queue),
                            (AUDIT_PAGES, audit), (MODEL_PAGES, models),
                            (OUTCOME_PAGES, models), (MONITORING_PAGES, models),
                            (BACKTEST_PAGES, backtests), (EVERYONE, 200)):
        for path in _pages(paths, aid, backtest_id):
            response = user.get(path)
            assert response.status_code == expected, (role, path, response.status_code)
            if expected == 403:
                assert "Not allowed" in response.get_data(as_text=True)
                assert response.mimetype == "text/html"
    # The menu leads to every section the role may open and to no other; so do the tiles.
    opens = {path for path in SECTIONS if user.get(path).status_code == 200}
    home = user.text("/console/")
    menu = home.split('<nav aria-label="Sections">', 1)[1].split("</nav>", 1)[0]
    assert set(re.findall(r'href="([^"]+)"', menu)) == opens, role
    assert set(re.findall(r'class="tile" href="([^"]+)"', home)) <= opens, role
    assert ('href="/console/backtests"' in home) == (backtests == 200)
    verify = user.post("/console/audit/verify")
    search = user.post("/console/audit", {"kind": "decision.made"})
    assert verify.status_code == audit and search.status_code == (303 if audit == 200 else 403)
    resolve = user.post(f"/console/reviews/{review['review_id']}/resolution",
                        {"outcome": "upheld", "note": "checked"})
    state = console.wired.reviews.get(review["review_id"])["state"]
    start = user.post("/console/backtests", {"strategy": "v1/2026.11"})
    started = len(console.wired.backtests.list()) - 1
    if may_change:
        assert resolve.status_code == 303 and state == "resolved"
        assert start.status_code == 303 and started == 1
        finished_backtest(console, start.headers["Location"].rsplit("/", 1)[1])
    else:
        assert resolve.status_code == 403 and state == "open"
        assert start.status_code == 403 and started == 0


def test_without_a_session_every_page_sends_to_sign_in(backtested):
    console, declined, review, backtest_id = backtested()
    anonymous = console.user()
    paths = _pages(APPLICATION_PAGES + REVIEW_PAGES + AUDIT_PAGES + MODEL_PAGES + OUTCOME_PAGES
                   + MONITORING_PAGES + BACKTEST_PAGES + EVERYONE, declined["application_id"],
                   backtest_id)
    for path in paths:
        response = anonymous.get(path)
        assert response.status_code == 302, path
        target = urlsplit(response.headers["Location"])
        assert target.path == "/console/sign-in"
        assert parse_qs(target.query)["next"] == [path], path
    for path in (f"/console/reviews/{review['review_id']}/resolution", "/console/audit/verify",
                 "/console/audit", "/console/backtests"):
        response = anonymous.post(path, {"outcome": "upheld", "note": "x",
                                         "strategy": "v1/2026.11"}, csrf=False)
        assert response.status_code == 302, path
        assert urlsplit(response.headers["Location"]).path == "/console/sign-in"
    assert console.wired.reviews.get(review["review_id"])["state"] == "open"
    assert [b["backtest_id"] for b in console.wired.backtests.list()] == [backtest_id]


def test_a_channel_key_cannot_sign_in_nor_open_any_page(reviewed):
    console, declined, _ = reviewed
    channel = console.user()
    response = channel.sign_in(console.keys["channel"])
    assert response.status_code == 403
    assert "channel key" in response.get_data(as_text=True)
    for path in _pages(APPLICATION_PAGES + REVIEW_PAGES + AUDIT_PAGES + BACKTEST_PAGES,
                       declined["application_id"]):
        assert channel.get(path).status_code == 302, path
    # The JSON API's bearer header means nothing to the console either.
    bearer = {"Authorization": f"Bearer {console.keys['channel']}"}
    for path in ("/console/applications", "/console/audit"):
        assert channel.get(path, headers=bearer).status_code == 302


def test_a_wrong_key_is_refused_and_a_good_one_goes_where_it_was_heading(console):
    user = console.user()
    response = user.sign_in("fl_0123456789ab_not-the-secret")
    assert response.status_code == 401 and "not valid" in response.get_data(as_text=True)
    response = user.sign_in("")
    assert response.status_code == 400
    response = user.sign_in(console.keys["auditor"], next="/console/audit?kind=decision.made")
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/audit?kind=decision.made"
    for elsewhere in ("https://example.com/", "//example.com/console/", "/v1/audit/records",
                      "/console\\..\\x"):
        response = console.user().sign_in(console.keys["auditor"], next=elsewhere)
        assert response.headers["Location"] == "/console/", elsewhere


def test_csrf_is_checked_on_every_form(reviewed):
    console, _, review = reviewed
    officer = console.user("risk_officer")
    auditor = console.user("auditor")
    resolution = f"/console/reviews/{review['review_id']}/resolution"
    body = {"outcome": "upheld", "note": "checked", "strategy": "v1/2026.11"}
    for user, path in ((officer, resolution), (auditor, "/console/audit/verify"),
                       (auditor, "/console/audit"), (officer, "/console/sign-out"),
                       (officer, "/console/backtests")):
        assert user.post(path, body, csrf=False).status_code == 403, path
        assert user.post(path, {**body, "csrf_token": "forged"}, csrf=False
                         ).status_code == 403, path
    # Another session's token is no good either.
    assert officer.post(resolution, {**body, "csrf_token": auditor.csrf()},
                        csrf=False).status_code == 403
    assert console.wired.reviews.get(review["review_id"])["state"] == "open"
    assert console.wired.backtests.list() == []
    # Nor can a sign-in be forged.
    fresh = console.user()
    response = fresh.http.post("/console/sign-in", data={"api_key": console.keys["auditor"]})
    assert response.status_code == 403
    assert fresh.get("/console/").status_code == 302


def test_the_session_cookie_is_httponly_strict_and_never_holds_the_key(console):
    user = console.user()
    response = user.sign_in(console.keys["risk_officer"])
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    cookie = next(c for c in cookies if c.startswith("flashloan_console="))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes and "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes  # plain HTTP outside production; see the next test
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    session = console.app.session_interface.get_signing_serializer(console.app).loads(value)
    assert set(session) == {"key_id", "name", "role", "since", "csrf"}
    assert session["role"] == "risk_officer"
    secret = console.keys["risk_officer"]
    assert secret not in value and secret.split("_", 2)[2] not in str(session)


def test_in_production_the_cookie_is_secure_and_no_key_file_is_mentioned(tmp_path):
    from service.usecases.api_keys import create_key
    from tests.apps import build_app

    migrate(f"sqlite:///{tmp_path / 'p.db'}")
    app = build_app({"env": "production", "database_url": f"sqlite:///{tmp_path / 'p.db'}",
                      "var_dir": tmp_path,
                      "pii_key": "Qm7f3Kx9-Lr2_Vb8Nc1Wd6Zt4Yh5Jg0Ps-Ea7Uo3Ri9",
                      "signing_key": "5e" * 32, "sources": "http",
                      "sources_url": "http://127.0.0.1:9"})
    try:
        key = create_key(app.extensions["flashloan"].store.engine, "auditor", "auditor")
        client = app.test_client()
        page = client.get("/console/sign-in").get_data(as_text=True)
        assert "dev-keys.txt" not in page
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = client.post("/console/sign-in", data={"csrf_token": token, "api_key": key})
        assert response.status_code == 303
        cookie = response.headers["Set-Cookie"].lower()
        assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        app.extensions["flashloan"].close()


def test_the_sign_in_page_says_where_development_keys_are(console, tmp_path):
    page = console.user().text("/console/sign-in")
    assert str(tmp_path / "dev-keys.txt") in page


def test_sign_out_ends_the_session(console):
    user = console.user("auditor")
    assert user.get("/console/audit").status_code == 200
    response = user.post("/console/sign-out")
    assert response.status_code == 303 and response.headers["Location"] == "/console/sign-in"
    assert user.get("/console/audit").status_code == 302
    assert "You are signed out" in user.text("/console/sign-in")


def test_revoking_a_key_ends_its_console_sessions(console):
    user = console.user("auditor")
    assert user.get("/console/audit").status_code == 200
    with console.wired.store.engine.begin() as conn:
        conn.execute(update(api_keys).values(revoked_at=now_text()))
    assert user.get("/console/audit").status_code == 302
    assert user.get("/console/").status_code == 302


def test_console_pages_carry_security_headers(console):
    user = console.user("admin")
    for path in ("/console/", "/console/sign-in", "/console/audit", "/console/nowhere"):
        response = user.get(path)
        headers = response.headers
        assert "default-src 'self'" in headers["Content-Security-Policy"], path
        assert "img-src 'self' data:" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
    css = user.get("/console/static/console.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "no-store" not in css.headers["Cache-Control"]
    css.close()


def test_unknown_pages_answer_with_a_console_page(console):
    user = console.user("admin")
    response = user.get("/console/nowhere/at/all")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "no such console page" in response.get_data(as_text=True)
    # Signing out is a form (POST); the address itself asks to confirm.
    assert "Sign out" in user.text("/console/sign-out")
    assert user.get("/console/models").status_code == 200


def test_a_session_ends_eight_hours_after_sign_in(console):
    from service.web.console.access import SESSION_LIFETIME_S

    user = console.user("risk_officer")
    assert user.get("/console/reviews").status_code == 200
    with user.http.session_transaction() as session:
        session["since"] -= SESSION_LIFETIME_S + 1
    response = user.get("/console/reviews")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/sign-in"
    assert user.get("/console/").status_code == 302


def test_every_console_page_takes_its_roles_from_the_table_the_api_reads(console):
    app = console.app
    open_to_all = {"console.sign_in", "console.sign_out", "console.static", "console.not_found"}
    guarded = {rule.endpoint: app.view_functions[rule.endpoint]
               for rule in app.url_map.iter_rules()
               if rule.endpoint.startswith("console.") and rule.endpoint not in open_to_all}
    assert len(guarded) == 18, sorted(guarded)
    signs_in = {"risk_officer", "auditor", "admin"}
    operations = {(method, rule.rule): app.view_functions[rule.endpoint]
                  for rule in app.url_map.iter_rules() for method in rule.methods}
    # The console grants no role what the API refuses it, and refuses none what it grants.
    for endpoint, operation in COUNTERPARTS.items():
        allowed = set(getattr(guarded[endpoint], "console_roles", ()))
        assert allowed == set(operations[operation].required_roles) & signs_in, endpoint
    assert set(roles_holding("console.sign_in")) == signs_in
    for endpoint, view in guarded.items():
        capability = getattr(view, "capability", None)
        assert capability is not None, f"{endpoint} names no capability"
        assert set(view.console_roles) == set(roles_holding(capability)) & signs_in, endpoint
        if endpoint in COUNTERPARTS:
            assert capability == operations[COUNTERPARTS[endpoint]].capability, endpoint
