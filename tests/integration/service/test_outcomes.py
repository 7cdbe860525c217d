"""Loan outcomes over HTTP: the servicing system posts them and is told of the loan, nothing of
its decision; risk officers read realised default beside predicted PD; each post is one audit
record, and a refused one writes nothing."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from audit import AuditQuery
from service.persistence.tables import applications, loan_performance, loans
from service.usecases.outcomes import OutcomeBook
from tests.integration.service.conftest import Client


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def next_month() -> str:
    first = datetime.now(UTC).replace(day=1)
    return (first + timedelta(days=32)).strftime("%Y-%m")


def drawn(application_id: str, amount: float, *months: tuple[str, int],
          month: str | None = None) -> dict:
    """A body: the loan drawn now, and ``months`` as (status, days) of this month onwards."""
    return {"application_id": application_id, "drawn": True,
            "drawn_at": datetime.now(UTC).isoformat(), "amount": amount,
            "performance": [{"month": month or this_month(), "status": status,
                             "days_past_due": days} for status, days in months]}


def post(client: Client, body: dict, who: str = "servicing"):
    return client.post("/v1/outcomes", body, who=who)


def outcome_records(client: Client) -> list:
    store = client.app.extensions["flashloan"].store
    return list(store.iter_records(AuditQuery(kinds=("outcome.recorded",))))


def stored_rows(client: Client) -> tuple[int, int, int]:
    """Loans, months of performance and audit records stored."""
    store = client.app.extensions["flashloan"].store
    with store.engine.connect() as conn:
        counted = (conn.execute(select(func.count()).select_from(loans)).scalar_one(),
                   conn.execute(select(func.count()).select_from(loan_performance)).scalar_one())
    return (*counted, store.head().seq if store.head() else 0)


@pytest.fixture
def cohort(any_db_client: Client, people: list[str]) -> tuple[Client, list[dict], list[dict]]:
    """Sixteen applications decided through the API: (client, approved, declined)."""
    answers = [any_db_client.apply(nid).get_json() for nid in people[:16]]
    approved = [a for a in answers if a["status"] == "approved"]
    declined = [a for a in answers if a["status"] == "declined"]
    assert len(approved) >= 6 and declined, [a["status"] for a in answers]
    return any_db_client, approved, declined


# What each approved applicant's loan does, in turn: (drawn, months as (status, days)).
STORIES = (
    (True, [("default", 0)]),
    (True, [("past_due", 95)]),
    (True, [("current", 0)]),
    (True, [("past_due", 30)]),     # late, but not yet a default
    (False, []),                    # approved and never drawn: not a loan of the cohort
    (True, [("repaid", 0)]),
)


def test_calibration_by_grade_is_what_the_posts_imply(cohort):
    client, approved, _ = cohort
    expected: dict[str, dict] = defaultdict(lambda: {"loans": 0, "defaults": 0, "pds": []})
    for index, answer in enumerate(approved):
        is_drawn, months = STORIES[index % len(STORIES)]
        decision = answer["decision"]
        body = (drawn(answer["application_id"], decision["credit_limit"] / 2, *months)
                if is_drawn else {"application_id": answer["application_id"], "drawn": False})
        response = post(client, body)
        assert response.status_code == 200, response.get_json()
        history = response.get_json()
        if not is_drawn:
            assert history["drawn"] is False and history["performance"] == []
            continue
        defaulted = months[0][0] == "default" or (months[0][0] == "past_due"
                                                  and months[0][1] >= 90)
        assert history["defaulted"] is defaulted
        assert history["default_month"] == (this_month() if defaulted else None)
        cell = expected[decision["grade"]]
        cell["loans"] += 1
        cell["defaults"] += defaulted
        cell["pds"].append(decision["pd"])

    table = client.get("/v1/monitoring/calibration", who="risk_officer").get_json()
    assert "90" in table["default_rule"]
    assert [row["grade"] for row in table["by_grade"]] == sorted(expected)
    for row in table["by_grade"]:
        cell = expected[row["grade"]]
        mean_pd = sum(cell["pds"]) / len(cell["pds"])
        assert (row["loans"], row["defaults"]) == (cell["loans"], cell["defaults"])
        assert row["default_rate"] == pytest.approx(cell["defaults"] / cell["loans"])
        assert row["mean_pd"] == pytest.approx(mean_pd)
        assert row["ratio"] == pytest.approx(cell["defaults"] / cell["loans"] / mean_pd)
    every_pd = [pd for cell in expected.values() for pd in cell["pds"]]
    overall = table["overall"]
    assert overall["loans"] == len(every_pd) == sum(c["loans"] for c in expected.values())
    assert overall["defaults"] == sum(c["defaults"] for c in expected.values()) > 0
    assert overall["mean_pd"] == pytest.approx(sum(every_pd) / len(every_pd))
    # Every loan was approved this month: that month's row is the overall one.
    assert table["by_month"] == [{**overall, "month": this_month()}]
    for who in ("auditor", "admin"):
        assert client.get("/v1/monitoring/calibration", who=who).get_json()["overall"] == overall


def test_a_month_posted_again_is_a_correction(cohort):
    client, approved, _ = cohort
    answer = approved[0]
    aid, line = answer["application_id"], answer["decision"]["credit_limit"]
    first = post(client, drawn(aid, line, ("past_due", 91))).get_json()
    assert first["defaulted"] is True
    corrected = post(client, drawn(aid, line, ("current", 0)))
    assert corrected.status_code == 200
    history = corrected.get_json()
    assert [(m["month"], m["status"], m["days_past_due"]) for m in history["performance"]] == [
        (this_month(), "current", 0)]
    assert history["defaulted"] is False and history["recorded_at"] == first["recorded_at"]
    table = client.get("/v1/monitoring/calibration", who="risk_officer").get_json()
    assert (table["overall"]["loans"], table["overall"]["defaults"]) == (1, 0)
    records = outcome_records(client)
    assert [r.payload["corrected"] for r in records] == [[], [this_month()]]


def test_each_post_is_one_audit_record_without_personal_data(cohort, people):
    client, approved, _ = cohort
    answer = approved[1]
    aid = answer["application_id"]
    posted = post(client, drawn(aid, 3000, ("past_due", 12)))
    assert posted.status_code == 200
    (record,) = outcome_records(client)
    store = client.app.extensions["flashloan"].store
    servicing_key = client.keys["servicing"].split("_")[1]
    assert record.application_id == aid and record.actor == f"servicing:{servicing_key}"
    with store.engine.connect() as conn:
        subject = conn.execute(select(applications.c.subject).where(
            applications.c.application_id == aid)).scalar_one()
    assert record.payload == {
        "application_id": aid, "subject": subject, "drawn": True,
        "drawn_at": record.payload["drawn_at"], "amount": 3000.0,
        "months": [{"month": this_month(), "status": "past_due", "days_past_due": 12}],
        "corrected": [], "posted_at": posted.get_json()["updated_at"]}
    # Indexed by subject: found with the applicant's consent and decision.
    found = store.iter_records(AuditQuery(subject=subject))
    assert [r.kind for r in found] == ["consent.recorded", "decision.made", "outcome.recorded"]
    text = json.dumps(record.payload, ensure_ascii=False)
    assert not any(nid in text for nid in people) and "张" not in text and "1381234" not in text
    assert store.verify().ok


def test_a_refused_body_writes_nothing(cohort):
    client, approved, declined = cohort
    answer = approved[0]
    aid, line = answer["application_id"], answer["decision"]["credit_limit"]
    assert post(client, drawn(aid, 1000, ("current", 0))).status_code == 200
    before = stored_rows(client)
    refused = {
        "over the line": (drawn(aid, line + 1000, ("current", 0)), 422, {"amount"}),
        "next month": (drawn(aid, 1000, ("current", 0), month=next_month()), 422,
                       {"performance.0.month"}),
        "before approval": (drawn(aid, 1000, ("current", 0), month="2020-01"), 422,
                            {"performance.0.month"}),
        "days for current": (drawn(aid, 1000, ("current", 5)), 422,
                             {"performance.0.days_past_due"}),
        "no days for past due": (drawn(aid, 1000, ("past_due", 0)), 422,
                                 {"performance.0.days_past_due"}),
        "a month twice": (drawn(aid, 1000, ("current", 0), ("past_due", 3)), 422,
                          {"performance.1.month"}),
        "drawn before approval": ({**drawn(aid, 1000), "drawn_at": "2020-01-01T00:00:00Z"},
                                  422, {"drawn_at"}),
        "undrawn with months": ({"application_id": aid, "drawn": False}, 409, {"drawn"}),
        "a millionth of a fen": (drawn(aid, 1e-300, ("current", 0)), 422, {"amount"}),
        "no such application": (drawn("a_nobody", 1000), 404, set()),
        "declined": (drawn(declined[0]["application_id"], 1000), 404, set()),
    }
    for name, (body, status, fields) in refused.items():
        response = post(client, body)
        assert response.status_code == status, (name, response.get_json())
        error = response.get_json()["error"]
        assert set(error["fields"]) == fields, (name, error)
    assert stored_rows(client) == before
    assert len(outcome_records(client)) == 1


def test_servicing_is_told_of_the_loan_and_nothing_of_the_decision(cohort):
    client, approved, _ = cohort
    aid, line = approved[0]["application_id"], approved[0]["decision"]["credit_limit"]
    history = post(client, drawn(aid, 1000.5, ("current", 0))).get_json()
    assert set(history) == {"application_id", "drawn", "drawn_at", "amount", "defaulted",
                            "default_month", "performance", "recorded_at", "updated_at"}
    spec = client.get("/openapi.json", who=None).get_json()
    assert set(spec["components"]["schemas"]["OutcomeOut"]["properties"]) == set(history)
    over = post(client, drawn(aid, line + 1000, ("current", 0))).get_json()["error"]
    assert over["fields"] == {"amount": [
        f"must not exceed the credit line granted; got {line + 1000:,.2f}"]}
    early = post(client, drawn(aid, 1000, ("current", 0), month="2020-01")).get_json()
    assert early["error"]["fields"] == {"performance.0.month": [
        "must not be before the month of approval; got 2020-01"]}


def test_unknown_declined_and_deferred_get_one_answer(cohort, make_client, database_url,
                                                      people):
    """Servicing cannot tell an id that does not exist from one declined or deferred."""
    client, _, declined = cohort
    deferring = make_client(database_url, stub_faults="credit_report=error:1.0")
    deferred = deferring.apply(people[16]).get_json()
    assert deferred["status"] == "deferred", deferred
    before = stored_rows(client)
    answers = {}
    for name, aid in (("unknown", "a_" + "0" * 32),
                      ("declined", declined[0]["application_id"]),
                      ("deferred", deferred["application_id"])):
        response = post(client, drawn(aid, 1000, ("current", 0)))
        answers[name] = (response.status_code, response.get_json())
    assert answers["unknown"] == (404, {"error": {
        "code": "not_found", "message": "no such approved application", "fields": {}}})
    assert answers["declined"] == answers["unknown"], answers
    assert answers["deferred"] == answers["unknown"], answers
    assert stored_rows(client) == before


def test_only_the_servicing_role_posts_and_it_reads_nothing(cohort):
    client, approved, _ = cohort
    aid = approved[0]["application_id"]
    body = drawn(aid, 1000, ("current", 0))
    for who in ("channel", "risk_officer", "auditor", "admin"):
        response = post(client, body, who=who)
        assert response.status_code == 403, who
        assert response.get_json()["error"]["code"] == "forbidden"
    for path in (f"/v1/applications/{aid}", f"/v1/applications/{aid}/explanation",
                 "/v1/monitoring/calibration", "/v1/reasons", "/v1/reviews",
                 "/v1/audit/records", "/v1/keys", "/v1/models"):
        assert client.get(path, who="servicing").status_code == 403, path
    assert client.get("/v1/monitoring/calibration", who="channel").status_code == 403
    assert stored_rows(client)[:2] == (0, 0)


def test_an_overturned_decline_is_approved_when_the_review_resolved(cohort):
    client, _, declined = cohort
    aid = declined[0]["application_id"]
    review = client.post(f"/v1/applications/{aid}/review-requests",
                         {"reason": "收入已提高"}).get_json()
    resolved = client.post(f"/v1/reviews/{review['review_id']}/resolution",
                           {"outcome": "overturned", "note": "Income verified by payslips."},
                           who="risk_officer")
    assert resolved.status_code == 200, resolved.get_json()
    decision = resolved.get_json()["application"]["decision"]
    assert post(client, drawn(aid, decision["credit_limit"], ("current", 0))).status_code == 200
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        loan = conn.execute(select(loans).where(loans.c.application_id == aid)).one()
    assert loan.approved_at == resolved.get_json()["resolved_at"]
    assert (loan.grade, loan.pd, loan.credit_limit) == (
        decision["grade"], decision["pd"], decision["credit_limit"])


def test_months_accumulate_in_order_over_a_loans_life(cohort):
    """The book on a clock months ahead, as the servicing system would post month by month."""
    client, approved, _ = cohort
    wired = client.app.extensions["flashloan"]
    answer = approved[2]
    aid = answer["application_id"]
    start = datetime.now(UTC).replace(day=1)
    later = start + timedelta(days=100)
    book = OutcomeBook(wired.store, clock=lambda: later)
    months = [(start + timedelta(days=31 * i)).strftime("%Y-%m") for i in range(4)]
    principal = wired.keys.authenticate(f"Bearer {client.keys['servicing']}", "127.0.0.1")
    drawn_at = datetime.now(UTC)
    for m, status, days in ((months[2], "past_due", 40), (months[0], "current", 0),
                            (months[1], "past_due", 10), (months[3], "past_due", 100)):
        history = book.record(principal, aid, drawn=True, drawn_at=drawn_at, amount=5000.0,
                              performance=[{"month": m, "status": status,
                                            "days_past_due": days}])
    assert [m["month"] for m in history["performance"]] == months
    assert history["defaulted"] is True and history["default_month"] == months[3]
    calibration = book.calibration()
    assert calibration["overall"]["defaults"] == 1 and calibration["as_of"].startswith(
        later.strftime("%Y-%m"))
    assert len(outcome_records(client)) == 4 and wired.store.verify().ok
