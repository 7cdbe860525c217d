"""Loan outcomes without a database: the default rule, the checks of a posted body, the chart."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from service.usecases.outcomes import DEFAULT_DAYS_PAST_DUE, _rates, days_problem, is_default
from service.web.charts import realised_vs_predicted_svg
from service.web.schemas import OutcomeIn

DRAWN = {"application_id": "a_1", "drawn": True, "drawn_at": "2026-11-29T10:00:00+08:00",
         "amount": 20000}


def month(m: str, status: str = "current", days: int = 0) -> dict:
    return {"month": m, "status": status, "days_past_due": days}


def refusal(body: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        OutcomeIn().load(body)
    return caught.value.messages


@pytest.mark.parametrize(("status", "days", "defaulted"), [
    ("current", 0, False),
    ("repaid", 0, False),
    ("past_due", 1, False),
    ("past_due", DEFAULT_DAYS_PAST_DUE - 1, False),
    ("past_due", DEFAULT_DAYS_PAST_DUE, True),
    ("past_due", 400, True),
    ("default", 0, True),
    ("default", 120, True),
])
def test_the_default_rule(status, days, defaulted):
    assert is_default(status, days) is defaulted


@pytest.mark.parametrize(("status", "days", "problem"), [
    ("current", 0, None),
    ("current", 3, "must be 0 when status is current; got 3"),
    ("repaid", 1, "must be 0 when status is repaid; got 1"),
    ("past_due", 0, "must be at least 1 when status is past_due; got 0"),
    ("past_due", 1, None),
    ("default", 0, None),
])
def test_days_past_due_must_fit_the_status(status, days, problem):
    assert days_problem(status, days) == problem


def test_a_drawn_loan_with_its_months_is_read_in_utc():
    body = OutcomeIn().load({**DRAWN, "performance": [month("2026-11"),
                                                      month("2026-12", "past_due", 12)]})
    assert body["drawn_at"].isoformat() == "2026-11-29T02:00:00+00:00"
    assert body["amount"] == 20000.0 and len(body["performance"]) == 2


def test_a_loan_not_drawn_needs_nothing_else():
    assert OutcomeIn().load({"application_id": "a_1", "drawn": False}) == {
        "application_id": "a_1", "drawn": False, "performance": []}


def test_each_bad_month_is_named_by_its_place():
    messages = refusal({**DRAWN, "performance": [
        month("2026-11", "current", 3), month("2026-13"), month("2026-12", "late"),
        month("2026-10", "past_due", -1)]})
    assert messages == {"performance": {
        0: {"days_past_due": ["must be 0 when status is current; got 3"]},
        1: {"month": ["must be a month written YYYY-MM, like 2026-11"]},
        2: {"status": ["Must be one of: current, past_due, default, repaid."]},
        3: {"days_past_due": ["Must be greater than or equal to 0 and less than or equal "
                              "to 9999."]}}}


def test_a_month_given_twice_is_refused_at_its_second_place():
    messages = refusal({**DRAWN, "performance": [month("2026-11"), month("2026-12"),
                                                 month("2026-11", "past_due", 5)]})
    assert messages == {"performance": {2: {"month": ["2026-11 is given more than once"]}}}


def test_drawn_needs_when_and_how_much_and_undrawn_has_neither():
    assert refusal({"application_id": "a_1", "drawn": True}) == {
        "drawn_at": ["required when drawn is true"], "amount": ["required when drawn is true"]}
    assert refusal({"application_id": "a_1", "drawn": False, "amount": 10,
                    "performance": [month("2026-11")]}) == {
        "amount": ["must be absent or null when drawn is false"],
        "performance": ["must be empty when drawn is false: a loan not drawn has no "
                        "performance"]}


@pytest.mark.parametrize(("field", "value"), [
    ("drawn", 1), ("drawn", "true"), ("amount", "20000"), ("amount", True), ("amount", 0),
    ("amount", -5), ("drawn_at", "2026-11-29T10:00:00"), ("application_id", ""),
])
def test_values_of_the_wrong_kind_are_refused(field, value):
    assert field in refusal({**DRAWN, field: value})


@pytest.mark.parametrize(("amount", "problem"), [
    (1e-300, "must be at least 0.01 (one fen); got 1e-300"),
    (0.009, "must be at least 0.01 (one fen); got 0.009"),
    (12.345, "must be in CNY to the fen, at most 2 decimal places; got 12.345"),
])
def test_an_amount_is_in_whole_fen(amount, problem):
    assert refusal({**DRAWN, "amount": amount}) == {"amount": [problem]}


def test_an_amount_to_the_fen_is_read_as_posted():
    assert [OutcomeIn().load({**DRAWN, "amount": amount})["amount"]
            for amount in (0.01, 1234.56, 20000)] == [0.01, 1234.56, 20000.0]


def test_unknown_fields_are_refused():
    assert refusal({**DRAWN, "balance": 5}) == {"balance": ["Unknown field."]}
    assert refusal({**DRAWN, "performance": [{**month("2026-11"), "note": "x"}]}) == {
        "performance": {0: {"note": ["Unknown field."]}}}


def cell(grade: str, month_: str, loans: int, defaults: int, pds: list[float]):
    return SimpleNamespace(grade=grade, approved_month=month_, loans=loans, defaults=defaults,
                           predicted=len(pds), pd_total=sum(pds) if pds else None)


def test_rates_add_cells_up_and_divide_last():
    rates = _rates([cell("A", "2026-10", 3, 1, [0.01, 0.02, 0.03]),
                    cell("A", "2026-11", 1, 0, [0.06])])
    assert rates["loans"] == 4 and rates["defaults"] == 1
    assert rates["default_rate"] == 0.25
    assert rates["mean_pd"] == pytest.approx(0.03)
    assert rates["ratio"] == pytest.approx(0.25 / 0.03)


def test_rates_of_nothing_are_unknown_not_zero():
    assert _rates([]) == {"loans": 0, "defaults": 0, "default_rate": None, "mean_pd": None,
                          "ratio": None}
    assert _rates([cell("B", "2026-11", 2, 0, [])])["ratio"] is None


def test_the_chart_draws_two_bars_per_grade_without_script():
    svg = realised_vs_predicted_svg([
        {"grade": "A", "loans": 10, "defaults": 1, "default_rate": 0.1, "mean_pd": 0.02},
        {"grade": "B<", "loans": 4, "defaults": 0, "default_rate": 0.0, "mean_pd": 0.05},
        {"grade": "C", "loans": 0, "defaults": 0, "default_rate": None, "mean_pd": None}])
    assert svg.startswith("<svg") and "<script" not in svg
    assert "Grade A, predicted: 2.00%" in svg and "Grade A, realised: 10.00%" in svg
    assert "B&lt;" in svg and "B<" not in svg
    assert "Grade C" not in svg
    assert len(re.findall(r"<g><title>Grade [^<]+</title>\s*<rect ", svg)) == 4
