"""Purging payloads past the retention period keeps the chain verifiable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audit.errors import PurgeRefused
from audit.records import AuditQuery
from audit.store import AuditStore

NOW = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
OLD = datetime(2024, 1, 10, tzinfo=UTC)


@pytest.fixture
def aged(make_store) -> AuditStore:
    """Four records from 2024, two from 2030, with the clock in mid-2031."""
    store = make_store(clock=lambda: NOW)
    for i in range(6):
        moment = OLD + timedelta(days=i) if i < 4 else datetime(2030, 1, i, tzinfo=UTC)
        store.append(
            "decision.made",
            {"i": i, "outcome": "approved", "reason_codes": ["R1"], "name": "张*"},
            application_id=f"app-{i}",
            recorded_at=moment,
        )
    return store


def test_purge_removes_old_payloads_and_the_chain_still_verifies(aged: AuditStore) -> None:
    result = aged.purge(datetime(2025, 1, 1, tzinfo=UTC), "system:cli")
    assert (result.purged, result.first_seq, result.last_seq) == (4, 1, 4)
    assert [aged.get(seq).payload for seq in range(1, 5)] == [None] * 4
    assert aged.get(5).payload["i"] == 4
    verified = aged.verify()
    assert (verified.ok, verified.checked) == (True, 7), verified


def test_purge_is_itself_a_record(aged: AuditStore) -> None:
    result = aged.purge(datetime(2025, 1, 1, tzinfo=UTC), "system:cli")
    record = aged.head()
    assert record == result.record
    assert (record.seq, record.kind, record.actor) == (7, "records.purged", "system:cli")
    assert record.payload == {
        "before": "2025-01-01T00:00:00.000000Z",
        "purged": 4,
        "first_seq": 1,
        "last_seq": 4,
        "retention_years": 5,
    }
    assert result.to_dict()["record_seq"] == 7


def test_purged_records_stay_findable_by_their_index_data(aged: AuditStore) -> None:
    aged.purge(datetime(2025, 1, 1, tzinfo=UTC), "system:cli")
    found = list(aged.iter_records(AuditQuery(outcome="approved", reason_code="R1")))
    assert [r.seq for r in found] == [1, 2, 3, 4, 5, 6]
    assert [r.payload is None for r in found] == [True] * 4 + [False] * 2


def test_purge_inside_the_retention_period_is_refused(aged: AuditStore) -> None:
    with pytest.raises(PurgeRefused, match=r"before must be on or before 2026-06-15T12:00"):
        aged.purge(datetime(2027, 1, 1, tzinfo=UTC), "system:cli")
    assert aged.head().seq == 6
    assert aged.get(1).payload is not None


def test_shorter_retention_may_be_given_explicitly(aged: AuditStore) -> None:
    result = aged.purge(datetime(2031, 1, 1, tzinfo=UTC), "system:cli", retention_years=0)
    assert result.purged == 6
    assert aged.verify().ok


def test_later_purges_keep_the_trail_of_earlier_ones(aged: AuditStore) -> None:
    aged.purge(datetime(2025, 1, 1, tzinfo=UTC), "system:cli")
    second = aged.purge(NOW, "system:cli", retention_years=0)
    assert second.purged == 2
    assert aged.get(7).payload["purged"] == 4, "a records.purged payload is never purged"
    again = aged.purge(NOW, "system:cli", retention_years=0)
    assert (again.purged, again.first_seq, again.last_seq) == (0, None, None)
    assert aged.verify().checked == 9


@pytest.mark.parametrize(
    ("before", "actor", "years", "message"),
    [
        (datetime(2020, 1, 1), "system:cli", None, "before must be timezone-aware"),
        (datetime(2020, 1, 1, tzinfo=UTC), "", None, "actor must name who purges"),
        (datetime(2020, 1, 1, tzinfo=UTC), "system:cli", -1, "retention_years must be"),
    ],
)
def test_bad_purge_arguments_are_refused(aged: AuditStore, before, actor, years, message) -> None:
    with pytest.raises(ValueError, match=message):
        aged.purge(before, actor, retention_years=years)
    assert aged.head().seq == 6
