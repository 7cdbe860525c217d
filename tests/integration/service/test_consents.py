"""Consents over HTTP: recorded, validated, scoped to their channel, withdrawn, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from audit import AuditQuery
from service.persistence.tables import applications


def kinds(client) -> list[str]:
    """The kinds of the records, less the fixture's keys (recorded as they were made)."""
    store = client.app.extensions["flashloan"].store
    return [r.kind for r in store.iter_records(AuditQuery()) if not r.kind.startswith("key.")]


def test_a_consent_is_recorded_pseudonymised_and_audited(any_db_client, people):
    consent = any_db_client.consent(people[0])
    assert consent["status"] == "live"
    assert "subject" not in consent and "national_id" not in consent
    assert kinds(any_db_client) == ["consent.recorded"]
    record = next(any_db_client.app.extensions["flashloan"].store.iter_records(
        AuditQuery(kinds=("consent.recorded",))))
    assert people[0] not in str(record.payload)
    assert record.payload["subject"] == any_db_client.app.extensions[
        "flashloan"].pseudonymiser.national_id(people[0])


@pytest.mark.parametrize(("change", "field"), [
    ({"national_id": "110105194912310021"}, "national_id"),
    ({"national_id": "12345"}, "national_id"),
    ({"scopes": ["provident_fund", "bank_statements"]}, "scopes.1"),
    ({"scopes": []}, "scopes"),
    ({"purpose": "marketing"}, "purpose"),
    ({"granted_at": "2026-01-01T00:00:00"}, "granted_at"),
    ({"text_version": ""}, "text_version"),
    ({"channel": "other-bank"}, "channel"),
    ({"extra": 1}, "extra"),
])
def test_bad_consents_are_refused_naming_the_field(client, people, change, field):
    now = datetime.now(UTC)
    body = {"national_id": people[0], "scopes": ["credit_report"],
            "purpose": "credit_application", "granted_at": now.isoformat(),
            "expires_at": (now + timedelta(days=3)).isoformat(), "text_version": "v1",
            "channel": "bank-app", **change}
    r = client.post("/v1/consents", body)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]
    assert kinds(client) == []


def test_expiry_must_follow_the_grant(client, people):
    now = datetime.now(UTC)
    r = client.post("/v1/consents", {
        "national_id": people[0], "scopes": ["credit_report"], "purpose": "credit_application",
        "granted_at": now.isoformat(), "expires_at": (now - timedelta(days=1)).isoformat(),
        "text_version": "v1", "channel": "bank-app"})
    assert r.status_code == 422
    assert "expires_at" in r.get_json()["error"]["fields"]


def test_another_channel_cannot_see_or_withdraw_a_consent(client, people):
    consent = client.consent(people[0])
    path = f"/v1/consents/{consent['consent_id']}"
    assert client.get(path).status_code == 200
    assert client.get(path, who="other_channel").status_code == 404
    assert client.delete(path, who="other_channel").status_code == 404
    assert client.get(path, who="risk_officer").status_code == 200


def test_withdrawal_stops_every_later_query(client, people):
    consent = client.consent(people[1])
    r = client.delete(f"/v1/consents/{consent['consent_id']}")
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    assert client.delete(f"/v1/consents/{consent['consent_id']}").status_code == 200
    r = client.post("/v1/applications", client.application(people[1], consent["consent_id"]))
    assert r.status_code == 422
    assert "withdrawn" in r.get_json()["error"]["message"]
    assert kinds(client) == ["consent.recorded", "consent.withdrawn"]
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        assert conn.execute(select(applications)).first() is None
