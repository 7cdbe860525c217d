"""One policy in force: the strategy book's champion's. The bounds requests are checked
against, those the API document states and the grades and terms the console offers are all
its, and all follow a change of champion."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest

from datasources.stub.world import population_ids
from scoring.online.policy import POLICY_DIR, load_policy

CHAMPION, NARROW = "v1/2026.11", "v1/2026.11-narrow"
REFRESH_S = 0.2
# The narrow policy's grades: other names, other rates.
NARROW_GRADES = {"AA": 0.06, "BB": 0.085, "CC": 0.11, "DD": 0.14, "EE": 0.17, "FF": 0.0}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def policies(tmp_path) -> Path:
    """A folder with a policy of another amount range (5,000 to 50,000), other terms (6 and
    12 months) and other grades than the shipped one's."""
    doc = json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))
    doc["version"] = NARROW.split("/")[1]
    doc["limit"].update(min_line=5000, max_line=50_000)
    doc["terms_months"] = [6, 12]
    for grade, (name, rate) in zip(doc["grades"], NARROW_GRADES.items(), strict=True):
        grade.update(grade=name, annual_rate=rate)
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / f"{doc['version']}.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


def loan_bounds(client) -> tuple[tuple[float, float], list[int]]:
    """The amount range and the terms that /openapi.json states for a loan request."""
    spec = client.get("/openapi.json", who=None)
    assert spec.status_code == 200
    properties = spec.get_json()["components"]["schemas"]["LoanRequestIn"]["properties"]
    amount = properties["amount"]
    return (amount["minimum"], amount["maximum"]), properties["term_months"]["enum"]


def refusal(client, national_id: str, **request) -> dict[str, list[str]]:
    """The fields a 422 names for an application asking for ``request``."""
    consent = client.consent(national_id)
    r = client.post("/v1/applications",
                    client.application(national_id, consent["consent_id"], **request))
    assert r.status_code == 422, r.get_json()
    return r.get_json()["error"]["fields"]


def console_page(client, path: str) -> str:
    """``path`` of the console, read by a risk officer signed in with their key."""
    browser = client.app.test_client()
    form = browser.get("/console/sign-in").get_data(as_text=True)
    signed_in = browser.post("/console/sign-in", data={
        "csrf_token": _CSRF.search(form).group(1), "api_key": client.keys["risk_officer"]})
    assert signed_in.status_code == 303
    page = browser.get(path)
    assert page.status_code == 200, path
    return html.unescape(page.get_data(as_text=True))


def test_a_new_champion_s_policy_bounds_requests_the_document_and_the_console(
        make_client, policies, database_url):
    client = make_client(database_url, policies_dir=str(policies),
                         strategy_refresh_s=REFRESH_S)
    shipped = load_policy()
    people = population_ids(12, 31)
    # Under the shipped champion: its range and terms, in the document and the checks.
    assert loan_bounds(client) == (shipped.amount_range, list(shipped.terms_months))
    assert client.apply(people[0], amount=60_000, term_months=24).status_code == 201

    r = client.http.put("/v1/strategies", json={"champion": NARROW, "reason": "narrow the range"},
                        headers=client.headers("admin"))
    assert r.status_code == 200, r.get_json()
    time.sleep(REFRESH_S)

    # (a) An amount and a term the shipped policy allows, and the new champion's does not,
    # are refused naming the field and the new champion's bounds.
    assert refusal(client, people[1], amount=60_000) == {
        "request.amount": ["must be a number from 5000 to 50000; got 60000"]}
    assert refusal(client, people[2], amount=4_000) == {
        "request.amount": ["must be a number from 5000 to 50000; got 4000"]}
    assert refusal(client, people[3], term_months=24) == {
        "request.term_months": ["must be one of 6, 12 (months); got 24"]}
    # (b) The document states the new champion's bounds.
    assert loan_bounds(client) == ((5000, 50_000), [6, 12])

    # (c) The console's review form offers the new champion's line range and grades' rates,
    # and its search the new champion's grades.
    decided = [client.apply(nid, amount=20_000, term_months=6).get_json() for nid in people[4:]]
    assert {answer["strategy"] for answer in decided} == {NARROW}
    reviewed = next(a for a in decided if a["status"] in ("approved", "declined"))
    r = client.post(f"/v1/applications/{reviewed['application_id']}/review-requests",
                    {"reason": "我的收入比记录的高，请人工复核"})
    assert r.status_code == 201, r.get_json()
    queue = console_page(client, "/console/reviews")
    assert "a line of ¥5,000 to ¥50,000 in steps of ¥1,000" in queue
    assert 'min="5000" max="50000"' in queue
    assert "(grade AA)" in queue and "(grade A)" not in queue
    assert "6.00% (grade AA)" in queue
    search = console_page(client, "/console/applications")
    offered = re.findall(r'<option value="([A-Z]+)"', search.split('name="grade"')[1]
                         .split("</select>")[0])
    assert offered == list(NARROW_GRADES)
