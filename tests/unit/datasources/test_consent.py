"""The consent model and the gate's decisions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from datasources import SCOPES
from datasources.consent import Consent, ConsentGate
from datasources.errors import ConsentMissing

from .fakes import NOW, SUBJECT, gate_for, make_consent


def test_consent_is_live_between_grant_and_expiry():
    consent = make_consent()
    assert consent.is_live(NOW)
    assert not consent.is_live(consent.granted_at - timedelta(seconds=1))
    assert consent.is_live(consent.granted_at)
    assert not consent.is_live(consent.expires_at)


def test_withdrawal_ends_the_consent_from_that_moment():
    consent = make_consent().withdraw(NOW)
    assert consent.is_live(NOW - timedelta(seconds=1))
    assert not consent.is_live(NOW)
    assert consent.withdraw(NOW + timedelta(days=1)).withdrawn_at == NOW  # first one stands


def test_covers_needs_the_scope_and_a_live_consent():
    consent = make_consent(scopes={"credit_report"})
    assert consent.covers("credit_report", NOW)
    assert not consent.covers("income_tax", NOW)
    assert not consent.covers("credit_report", consent.expires_at)


@pytest.mark.parametrize(("changes", "message"), [
    ({"scopes": frozenset()}, "scopes must be a non-empty subset"),
    ({"scopes": frozenset({"bank_statements"})}, "scopes must be a non-empty subset"),
    ({"subject": ""}, "subject must be a non-empty string"),
    ({"granted_at": datetime(2026, 1, 1)}, "granted_at must be timezone-aware"),
    ({"expires_at": NOW - timedelta(days=2)}, "expires_at must be after granted_at"),
])
def test_consent_rejects_malformed_fields(changes, message):
    with pytest.raises(ValueError, match=message):
        make_consent(**changes)


def test_consent_scopes_must_not_be_a_bare_string():
    with pytest.raises(ValueError, match="scopes must be a set"):
        replace(make_consent(), scopes="credit_report")


def test_timestamps_are_normalised_to_utc():
    beijing = timezone(timedelta(hours=8))
    consent = make_consent(granted_at=datetime(2026, 10, 31, 17, 30, tzinfo=beijing))
    assert consent.granted_at == datetime(2026, 10, 31, 9, 30, tzinfo=UTC)
    assert consent.to_dict()["granted_at"] == "2026-10-31T09:30:00Z"


def test_round_trip_through_dict():
    consent = make_consent().withdraw(NOW)
    assert Consent.from_dict(json.loads(json.dumps(consent.to_dict()))) == consent


def test_digest_is_sha256_of_canonical_terms():
    consent = make_consent(scopes={"income_tax", "credit_report"})
    terms = {
        "channel": "app-ios", "consent_id": "c-1", "expires_at": "2026-12-01T09:30:00Z",
        "granted_at": "2026-10-31T09:30:00Z", "purpose": "credit_application",
        "scopes": ["credit_report", "income_tax"], "subject": SUBJECT,
        "text_version": "auth-2026-01",
    }
    encoded = json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()
    assert consent.digest() == hashlib.sha256(encoded).hexdigest()


def test_digest_changes_with_the_terms_but_not_with_withdrawal():
    consent = make_consent()
    assert consent.digest() == make_consent().digest()
    assert consent.digest() != make_consent(text_version="auth-2026-02").digest()
    assert consent.digest() != make_consent(scopes={"credit_report"}).digest()
    assert consent.withdraw(NOW).digest() == consent.digest()


def test_gate_returns_which_consent_authorised_the_query():
    consent = make_consent()
    gate, _ = gate_for(consent)
    auth = gate.authorise("c-1", "credit_report", SUBJECT)
    assert (auth.consent_id, auth.consent_digest, auth.scope, auth.at) == (
        "c-1", consent.digest(), "credit_report", NOW)


@pytest.mark.parametrize(("consent", "consent_id", "subject", "why"), [
    (make_consent(), "c-unknown", SUBJECT, "no_consent"),
    (make_consent(scopes={"credit_report"}), "c-1", SUBJECT, "scope_not_covered"),
    (make_consent(expires_at=NOW), "c-1", SUBJECT, "expired"),
    (make_consent(granted_at=NOW + timedelta(minutes=1),
                  expires_at=NOW + timedelta(days=1)), "c-1", SUBJECT, "not_yet_valid"),
    (make_consent(withdrawn_at=NOW - timedelta(seconds=1)), "c-1", SUBJECT, "withdrawn"),
    (make_consent(), "c-1", "hmac-of-someone-else", "other_subject"),
    (make_consent(purpose="marketing"), "c-1", SUBJECT, "other_purpose"),
])
def test_gate_refuses_with_the_reason(consent, consent_id, subject, why):
    gate, _ = gate_for(consent)
    with pytest.raises(ConsentMissing) as caught:
        gate.authorise(consent_id, "income_tax", subject)
    assert caught.value.why == why
    assert caught.value.scope == "income_tax"
    assert caught.value.retryable is False
    assert "income_tax" in str(caught.value) and why in str(caught.value)
    assert subject not in str(caught.value)


def test_gate_checks_the_channel_when_given():
    gate, _ = gate_for(make_consent())
    assert gate.authorise("c-1", "court_records", SUBJECT, channel="app-ios")
    with pytest.raises(ConsentMissing, match="other_channel"):
        gate.authorise("c-1", "court_records", SUBJECT, channel="web")


def test_gate_looks_the_consent_up_at_every_query_so_withdrawal_is_immediate():
    gate, store = gate_for(make_consent())
    gate.authorise("c-1", "credit_report", SUBJECT)
    store.withdraw("c-1", NOW - timedelta(microseconds=1))
    with pytest.raises(ConsentMissing, match="withdrawn"):
        gate.authorise("c-1", "credit_report", SUBJECT)
    assert store.lookups == 2


def test_gate_fails_closed_when_the_lookup_fails():
    def broken(consent_id: str) -> Consent | None:
        raise ConnectionError("database is down")

    with pytest.raises(ConsentMissing, match="lookup_failed") as caught:
        ConsentGate(broken, clock=lambda: NOW).authorise("c-1", "income_tax", SUBJECT)
    assert caught.value.why == "lookup_failed"


def test_gate_rejects_an_unknown_scope_name():
    gate, _ = gate_for(make_consent())
    with pytest.raises(ValueError, match="scope must be one of"):
        gate.authorise("c-1", "bank_statements", SUBJECT)


def test_gate_default_clock_is_now():
    consent = make_consent(granted_at=datetime.now(UTC) - timedelta(hours=1),
                           expires_at=datetime.now(UTC) + timedelta(hours=1))
    gate = ConsentGate(lambda cid: consent)
    assert {gate.authorise("c-1", s, SUBJECT).scope for s in SCOPES} == set(SCOPES)
