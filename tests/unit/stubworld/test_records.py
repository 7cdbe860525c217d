"""Typed source records: validation and the wire form."""

from __future__ import annotations

import pytest
from hypothesis import given

from datasources.records import (
    RECORD_TYPES,
    CreditReportRecord,
    ProvidentFundRecord,
    RecordError,
    flatten,
    raw_columns,
)
from tests.strategies import record


@pytest.mark.parametrize("scope", sorted(RECORD_TYPES))
def test_records_round_trip_through_dicts(scope):
    @given(record(scope))
    def check(rec):
        if rec is not None:
            assert type(rec).from_dict(rec.to_dict()) == rec

    check()


def test_records_are_immutable():
    rec = ProvidentFundRecord.no_account()
    with pytest.raises(AttributeError):
        rec.has_account = True  # type: ignore[misc]


@pytest.mark.parametrize(("changes", "message"), [
    ({"cards": -1}, "non-negative integer"),
    ({"cards": 1.5}, "non-negative integer"),
    ({"card_utilization": float("nan")}, "finite"),
    ({"overdue_now": "yes"}, "a boolean"),
    ({"extra": 1}, "unknown fields: extra"),
])
def test_bad_answers_name_the_field(changes, message):
    data = {**CreditReportRecord.no_record().to_dict(), **changes}
    with pytest.raises(RecordError, match=message):
        CreditReportRecord.from_dict(data)


def test_missing_fields_are_named():
    data = CreditReportRecord.no_record().to_dict()
    del data["bad_debt"]
    with pytest.raises(RecordError, match="missing fields: bad_debt"):
        CreditReportRecord.from_dict(data)


def test_a_status_outside_the_enumeration_is_refused():
    data = {**ProvidentFundRecord.no_account().to_dict(), "status": "frozen"}
    with pytest.raises(RecordError, match="one of normal, suspended, closed"):
        ProvidentFundRecord.from_dict(data)


def test_flatten_gives_every_column_and_none_for_absent_sources():
    row = flatten({"credit_report": CreditReportRecord.no_record()})
    assert set(row) == {c for scope in RECORD_TYPES for c in raw_columns(scope)}
    assert row["cr_has_record"] is False
    assert row["pf_has_account"] is None
