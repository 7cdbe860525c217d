"""Sufficiency: credit and court must answer, and two of the three income sources."""

from __future__ import annotations

import pytest

from datasources import SCOPES
from datasources.base import empty_record
from datasources.errors import (
    CircuitOpen,
    ConsentMissing,
    SourceMalformed,
    SourceTimeout,
    SourceUnavailable,
)
from datasources.outcome import GatherResult, SourceOutcome, status_of


def outcome(scope: str, status: str) -> SourceOutcome:
    record = empty_record(scope) if status == "ok" else None
    return SourceOutcome(scope, status, record, None if status == "ok" else status, 1, 10.0,
                         "c-1", "d" * 64)


def result(**statuses: str) -> GatherResult:
    everything = dict.fromkeys(SCOPES, "ok") | statuses
    return GatherResult({s: outcome(s, st) for s, st in everything.items() if st != "absent"},
                        12.0)


@pytest.mark.parametrize(("statuses", "sufficient"), [
    ({}, True),
    ({"provident_fund": "timeout"}, True),
    ({"income_tax": "consent_refused"}, True),
    ({"provident_fund": "timeout", "income_tax": "unavailable"}, False),
    ({"social_security": "absent", "income_tax": "malformed"}, False),
    ({"credit_report": "timeout"}, False),
    ({"court_records": "circuit_open"}, False),
    ({"court_records": "absent"}, False),
])
def test_sufficiency(statuses, sufficient):
    assert result(**statuses).sufficient is sufficient


def test_typed_empty_answers_count_as_answers():
    everyone_empty = result()
    assert all(o.record == empty_record(s) for s, o in everyone_empty.outcomes.items())
    assert everyone_empty.sufficient


def test_missing_reasons_say_what_is_missing():
    reasons = result(credit_report="timeout", court_records="absent", provident_fund="timeout",
                     income_tax="unavailable").missing_reasons
    assert reasons == [
        "credit_report: timeout",
        "court_records: not requested",
        "income sources: 1 of 3 answered, need 2 (provident_fund timeout, income_tax unavailable)",
    ]


def test_records_holds_only_answers():
    assert set(result(income_tax="timeout").records) == set(SCOPES) - {"income_tax"}


@pytest.mark.parametrize(("error", "status"), [
    (ConsentMissing("income_tax", "expired", "x"), "consent_refused"),
    (CircuitOpen("income_tax", "open"), "circuit_open"),
    (SourceTimeout("income_tax", "slow"), "timeout"),
    (SourceMalformed("income_tax", "bad"), "malformed"),
    (SourceUnavailable("income_tax", "down"), "unavailable"),
])
def test_status_of_each_error(error, status):
    assert status_of(error) == status
