"""The decision flow through its entry point, with in-memory fakes of its ports.

Each test applies as a channel would (``DecisionFlow.apply``) and reads what the flow left
behind: the application's row, its ``decision.made`` record, the Idempotency-Key's answer, the
metrics. The applicants are people of the stub world, decided by the shipped model and policy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from datasources import SCOPES
from datasources.consent import Consent
from service.domain.encoding import ANSWER_HASH, answer_hash
from service.domain.errors import ConsentInvalid, DecisionWithheld, IdempotencyConflict
from service.domain.principal import Principal
from service.usecases.decision_records import DECISION_KIND
from service.usecases.live_plans import LivePlan
from tests.unit.service.fakes import PII_KEY, FlowParts, build_flow, shipped_plan, world_records

CHANNEL = "bank-app"
PRINCIPAL = Principal(key_id="k1", name=CHANNEL, role="channel")
# People of the stub world (population seed 99) the shipped model approves and declines.
APPROVED = "610113197807183315"
DECLINED = "210102196911057687"
RECORDS = world_records(APPROVED, DECLINED)
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def live() -> LivePlan:
    return shipped_plan()


def consent_of(national_id: str, consent_id: str = "c_1", **changes) -> Consent:
    """A live consent of the channel's applicant, covering every source."""
    from audit import Pseudonymiser

    return Consent(**{"consent_id": consent_id,
                      "subject": Pseudonymiser(PII_KEY).national_id(national_id),
                      "scopes": frozenset(SCOPES), "purpose": "credit_application",
                      "granted_at": NOW - timedelta(days=1), "expires_at": NOW + timedelta(days=29),
                      "text_version": "v1", "channel": CHANNEL, **changes})


def application(national_id: str, consent_id: str = "c_1", amount: int = 20000) -> dict:
    return {"applicant": {"national_id": national_id, "name": "张三", "mobile": "13812348000"},
            "request": {"amount": amount, "term_months": 12, "purpose": "travel"},
            "consent_id": consent_id}


def wired(live: LivePlan, national_id: str, **options) -> FlowParts:
    return build_flow(live, [consent_of(national_id)], RECORDS, **options)


def the_record(parts: FlowParts) -> dict:
    """The one audit record the flow wrote, its payload parsed."""
    (record,) = parts.database.rows("audit_records")
    return {**record, "payload": json.loads(record["payload"])}


def test_an_approval_is_answered_and_recorded_with_its_application_in_one_write(live):
    parts = wired(live, APPROVED)
    status, text = parts.flow.apply(PRINCIPAL, application(APPROVED), None)
    answer = json.loads(text)
    assert status == 201
    assert answer["status"] == "approved"
    assert answer["decision"]["credit_limit"] > 0
    assert answer["missing_sources"] == []
    (row,) = parts.database.rows("applications")
    record = the_record(parts)
    assert row["application_id"] == answer["application_id"] == record["application_id"]
    assert (row["status"], row["outcome"], row["channel"]) == ("approved", "approved", CHANNEL)
    assert row["answer"] == text
    assert row["decision_seq"] == record["seq"] == 1
    assert row["sealed_applicant"] is None
    payload = record["payload"]
    assert record["kind"] == DECISION_KIND
    assert payload["outcome"] == "approved"
    assert payload["subject"] == parts.pseudonymiser.national_id(APPROVED) == row["subject"]
    assert payload["applicant"]["name"] != "张三"  # masked
    assert payload["facts"]["amount"] == 20000
    assert payload[ANSWER_HASH] == answer_hash(text)
    assert parts.metrics.decisions == ["approved"]
    assert parts.metrics.audit_failures == 0
    assert len(parts.database.cells) == 1  # the monitoring counts the committed decision


def test_a_decline_is_answered_with_its_reasons_and_recorded(live):
    parts = wired(live, DECLINED)
    status, text = parts.flow.apply(PRINCIPAL, application(DECLINED), None)
    answer = json.loads(text)
    assert status == 201
    assert answer["status"] == "declined"
    assert answer["decision"]["reasons"]
    (row,) = parts.database.rows("applications")
    assert (row["status"], row["decided_by"]) == ("declined", "model")
    payload = the_record(parts)["payload"]
    assert payload["outcome"] == "declined"
    assert payload["reason_codes"] == [r["code"] for r in answer["decision"]["reasons"]]
    assert parts.metrics.decisions == ["declined"]


def test_a_required_source_down_defers_the_application_and_keeps_the_applicant_sealed(live):
    parts = wired(live, APPROVED, down={"credit_report"}, opened={"credit_report"})
    body = application(APPROVED)
    status, text = parts.flow.apply(PRINCIPAL, body, None)
    answer = json.loads(text)
    assert status == 201
    assert answer["status"] == "deferred"
    assert answer["decision"] is None
    assert answer["missing_sources"] == ["credit_report"]
    (row,) = parts.database.rows("applications")
    assert row["status"] == "deferred"
    assert row["grade"] is None
    assert parts.seal.open(row["application_id"], row["sealed_applicant"]) == body["applicant"]
    payload = the_record(parts)["payload"]
    assert payload["outcome"] == "deferred"
    assert payload["unknown_sources"] == ["credit_report"]
    assert payload["sources"]["credit_report"]["status"] == "timeout"
    assert payload["missing_reasons"]
    assert parts.metrics.decisions == ["deferred"]
    assert parts.metrics.breakers_opened == ["credit_report"]


def test_a_consent_that_does_not_allow_the_application_stops_it_before_any_source(live):
    parts = build_flow(live, [consent_of(APPROVED, withdrawn_at=NOW - timedelta(minutes=1))],
                       RECORDS)
    with pytest.raises(ConsentInvalid, match="withdrawn"):
        parts.flow.apply(PRINCIPAL, application(APPROVED), "key-1")
    assert parts.gatherer.calls == []
    assert parts.database.tables == {}
    assert parts.metrics.decisions == []
    assert len(parts.idempotency.released) == 1  # the key is let go


def test_a_repeated_idempotency_key_replays_the_answer_without_deciding_again(live):
    parts = wired(live, APPROVED)
    first = parts.flow.apply(PRINCIPAL, application(APPROVED), "key-1")
    again = parts.flow.apply(PRINCIPAL, application(APPROVED), "key-1")
    assert again == first
    assert first[0] == 201
    assert len(parts.gatherer.calls) == 1
    assert len(parts.database.rows("applications")) == 1
    assert len(parts.database.rows("audit_records")) == 1
    (key,) = parts.database.rows("idempotency_keys")
    assert (key["application_id"], key["response"]) == (json.loads(first[1])["application_id"],
                                                        first[1])
    assert parts.metrics.decisions == ["approved"]
    with pytest.raises(IdempotencyConflict):
        parts.flow.apply(PRINCIPAL, application(APPROVED, amount=30000), "key-1")


def test_a_failed_audit_write_withholds_the_decision_and_leaves_nothing(live):
    parts = wired(live, APPROVED)
    parts.committer.fail_with = OperationalError("INSERT", {}, Exception("disk I/O error"))
    with pytest.raises(DecisionWithheld) as withheld:
        parts.flow.apply(PRINCIPAL, application(APPROVED), "key-1")
    assert withheld.value.code == "audit_unavailable"
    assert parts.database.tables == {}
    assert parts.metrics.audit_failures == 1
    assert parts.metrics.decisions == []
    assert len(parts.idempotency.released) == 1
    # Nothing was issued under the key: once the database takes writes again, it decides.
    parts.committer.fail_with = None
    status, text = parts.flow.apply(PRINCIPAL, application(APPROVED), "key-1")
    assert (status, json.loads(text)["status"]) == (201, "approved")
    assert len(parts.database.rows("applications")) == 1
