"""A payload is set to NULL only by a purge past the retention period; any other erasure is
refused by the database and, once the guards are dropped, reported by verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import DBAPIError

from audit.checkpoints import sign_checkpoint
from audit.store import AuditStore
from tests.integration.audit import tampering

NOW = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
OLD = datetime(2024, 1, 10, tzinfo=UTC)
ERASE = "UPDATE audit_records SET payload = NULL WHERE seq = :seq"


@pytest.fixture
def aged(make_store) -> AuditStore:
    """Four decisions from 2024 and two from 2031, with the clock in mid-2031."""
    store = make_store(clock=lambda: NOW)
    for i in range(6):
        moment = OLD + timedelta(days=i) if i < 4 else NOW - timedelta(days=6 - i)
        store.append("decision.made", {"i": i, "outcome": "approved"},
                     application_id=f"app-{i}", actor="channel:key_ab12", recorded_at=moment)
    return store


def refused(store: AuditStore, seq: int) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        tampering.execute(store.engine, ERASE, seq=seq)
    assert store.get(seq).payload is not None


def test_erasing_a_recent_decision_is_refused(aged: AuditStore) -> None:
    refused(aged, 6)


def test_erasing_an_old_decision_outside_a_purge_is_refused(aged: AuditStore) -> None:
    refused(aged, 1)


def test_a_purge_opens_the_guard_only_for_the_records_it_names(aged: AuditStore) -> None:
    result = aged.purge(datetime(2025, 1, 1, tzinfo=UTC), "system:cli")
    assert (result.purged, result.first_seq, result.last_seq) == (4, 1, 4)
    assert aged.head().kind == "records.purged"
    refused(aged, 5)
    refused(aged, 7)  # the purge's own record is the trail of the purge
    assert aged.verify().ok


def test_a_purge_record_inside_the_retention_period_opens_nothing(aged: AuditStore) -> None:
    # Anyone who can append could write a records.purged record; one whose cut-off is inside
    # the retention period it states covers nothing.
    aged.append("records.purged", {"before": "2031-06-01T00:00:00.000000Z", "purged": 6,
                                   "first_seq": 1, "last_seq": 6, "retention_years": 5},
                actor="system:cli")
    refused(aged, 5)
    refused(aged, 2)


def test_an_erased_payload_is_reported_by_verify(aged: AuditStore) -> None:
    signed = sign_checkpoint(aged, Ed25519PrivateKey.generate())
    tampering.drop_guards(aged.engine)
    tampering.execute(aged.engine, ERASE, seq=5)
    for result in (aged.verify(), aged.verify(checkpoints=[signed])):
        assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "payload_erased")
        assert "record 5" in result.message and "purge" in result.message


def test_an_erasure_beside_a_real_purge_is_reported(aged: AuditStore) -> None:
    aged.purge(datetime(2025, 1, 1, tzinfo=UTC), "system:cli")
    assert aged.verify().ok
    tampering.drop_guards(aged.engine)
    tampering.execute(aged.engine, ERASE, seq=5)
    result = aged.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "payload_erased")


def test_an_erasure_under_a_purge_record_inside_retention_is_reported(aged: AuditStore) -> None:
    aged.append("records.purged", {"before": "2031-06-01T00:00:00.000000Z", "purged": 6,
                                   "first_seq": 1, "last_seq": 6, "retention_years": 5},
                actor="system:cli")
    tampering.drop_guards(aged.engine)
    tampering.execute(aged.engine, ERASE, seq=2)
    result = aged.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 2, "payload_erased")
