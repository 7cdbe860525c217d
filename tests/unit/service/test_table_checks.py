"""What a row of applications, loans and loan_performance should hold by its records alone."""

from __future__ import annotations

from service.usecases.table_checks.applications import stated_application
from service.usecases.table_checks.loans import stated_loan, stated_months
from service.usecases.table_checks.records import Stated, same

T0, T1, T2 = ("2026-11-02T09:00:00.000000Z", "2026-11-03T09:00:00.000000Z",
              "2026-11-04T09:00:00.000000Z")


def made(seq: int, outcome: str, grade: str | None = "B", **more) -> Stated:
    decision = None if grade is None else {"grade": grade, "credit_limit": 20000.0, "pd": 0.02}
    return Stated(seq, "decision.made", T0, "channel:key_a", {
        "outcome": outcome, "decision": decision, "model_version": "v1",
        "decided_by": "model", "subject": "s" * 64, "channel": "bank-app",
        "consent_id": "c_1", **more}, True)


def resolved(seq: int, resolution: str, change: dict | None, **more) -> Stated:
    return Stated(seq, "review.resolved", T1, "risk_officer:key_r", {
        "resolution": resolution, "outcome": "approved", "decided_by": "person",
        "decision": change, **more}, True)


def posted(seq: int, months: list[tuple[str, str, int]], **more) -> Stated:
    return Stated(seq, "outcome.recorded", T2, "servicing:key_s", {
        "subject": "s" * 64, "drawn": True, "drawn_at": T2, "amount": 1000.0,
        "months": [{"month": m, "status": s, "days_past_due": d} for m, s, d in months],
        **more}, True)


def values(expected: dict) -> dict:
    return {name: value for name, (value, _) in expected.items()}


def test_a_retry_decides_the_row_and_the_first_attempt_says_who_applied():
    first = made(3, "deferred")
    retry = Stated(9, "decision.made", T1, "system:scheduler",
                   {**made(9, "approved").payload, "attempt": 2, "channel": "x"}, True)
    expected = stated_application([first, retry])
    assert values(expected) == {
        "status": "approved", "outcome": "approved", "grade": "B", "model_version": "v1",
        "decided_by": "model", "decision_seq": 9, "subject": "s" * 64, "channel": "bank-app",
        "consent_id": "c_1", "key_id": "key_a"}
    assert expected["status"][1] == 9 and expected["channel"][1] == 3


def test_a_deferral_has_no_grade_and_an_overturn_gives_one():
    assert values(stated_application([made(3, "deferred")]))["grade"] is None
    expected = stated_application([made(3, "declined", "E"),
                                   resolved(7, "overturned", {"grade": "D"})])
    assert values(expected)["grade"] == "D" and values(expected)["decided_by"] == "person"
    upheld = stated_application([made(3, "declined", "E"),
                                 Stated(7, "review.resolved", T1, None, {
                                     "resolution": "upheld", "outcome": "declined",
                                     "decided_by": "model", "decision": None}, True)])
    assert values(upheld)["status"] == "declined" and values(upheld)["grade"] == "E"


def test_a_loan_takes_the_terms_in_force_when_posted_and_the_overturn_time():
    records = [made(3, "declined", "E"),
               resolved(5, "overturned", {"grade": "D", "credit_limit": 5000.0},
                        resolved_at=T1),
               posted(8, [], posted_at=T2)]
    expected = values(stated_loan(records))
    assert (expected["grade"], expected["credit_limit"], expected["pd"]) == ("D", 5000.0, 0.02)
    assert (expected["approved_at"], expected["approved_month"]) == (T1, "2026-11")
    assert expected["recorded_at"] == expected["updated_at"] == T2


def test_records_without_the_times_leave_those_columns_unchecked():
    records = [made(3, "declined", "E"), resolved(5, "overturned", {"grade": "D"}),
               posted(8, [("2026-11", "current", 0)])]
    expected = stated_loan(records)
    assert not {"approved_at", "approved_month", "recorded_at", "updated_at"} & set(expected)
    assert set(stated_months(records[2:])["2026-11"]) == {"status", "days_past_due"}


def test_the_latest_post_of_a_month_holds():
    months = stated_months([posted(4, [("2026-10", "current", 0), ("2026-11", "current", 0)]),
                            posted(9, [("2026-11", "default", 0)], posted_at=T2)])
    assert values(months["2026-11"]) == {"status": "default", "days_past_due": 0,
                                         "recorded_at": T2}
    assert months["2026-11"]["status"][1] == 9 and months["2026-10"]["status"][1] == 4


def test_numbers_compare_as_numbers_and_nothing_else_does():
    assert same(1000, 1000.0) and same(0.1 + 0.2, 0.3) and not same(1000.0, 1000.5)
    assert same(True, True) and not same(None, False) and not same("1", 1)
