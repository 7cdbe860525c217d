"""Whether a row of strategy_plans holds what its `strategy.set` record states: the one
judgement the strategy book and the table check share."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from canonical import canonical_text, sha256_hex
from service.usecases.plan_records import PROBLEM_LIMIT, plan_row_refusal, sign_statement

KEY = Ed25519PrivateKey.generate()

PLAN = {"champion": "v1/2026.11", "challenger": None, "shadows": ["v1/2026.11-wide"]}
SET_AT = "2026-12-01T10:00:00.000000Z"


def row(**changes):
    return SimpleNamespace(**{"seq": 2, "plan": json.dumps(PLAN, sort_keys=True),
                              "set_by": "admin:ops", "reason": "watch wide", "set_at": SET_AT,
                              "audit_seq": 17, **changes})


def record(payload: dict | None = None, *, text: str | None = None, **changes):
    payload = {"previous": PLAN, "previous_seq": 1, "new": PLAN, "reason": "watch wide",
               "checked": {}, "seq": 2, "set_at": SET_AT, **(payload or {})}
    stored = canonical_text(payload)
    return SimpleNamespace(**{"seq": 17, "kind": "strategy.set", "actor": "admin:ops",
                              "payload": stored if text is None else text,
                              "payload_hash": sha256_hex(stored.encode()), **changes})


def test_a_row_holding_what_its_record_states_is_trusted():
    assert plan_row_refusal(row(), record(), previous_seq=1) is None
    # Float shares and key order do not matter: plans are compared by their canonical JSON.
    share = {**PLAN, "challenger": {"share": 0.2, "strategy": "v1/2026.11-strict"}}
    assert plan_row_refusal(row(plan=json.dumps(share)), record({"new": share}), 1) is None


def test_a_record_written_before_records_named_their_row_is_checked_by_the_plan_before():
    legacy = record()
    stated = json.loads(legacy.payload)
    del stated["seq"], stated["set_at"]
    text = canonical_text(stated)
    legacy = record(text=text, payload_hash=sha256_hex(text.encode()))
    assert plan_row_refusal(row(set_at="any time"), legacy, previous_seq=1) is None
    refusal = plan_row_refusal(row(seq=3), legacy, previous_seq=2)
    assert refusal.reason == "not_its_record" and "plan 1" in refusal.problem


@pytest.mark.parametrize(("the_row", "the_record", "reason", "words"), [
    (row(), None, "no_record", "record 17"),
    (row(), record(kind="decision.made"), "no_record", "decision.made"),
    (row(), SimpleNamespace(seq=17, kind="strategy.set", actor=None, payload=None,
                            payload_hash="0" * 64), "no_record", "purged"),
    (row(), record(text=canonical_text({"new": {"champion": "v1/x.json"}})), "record_altered",
     "payload_hash"),
    (row(seq=3), record(), "not_its_record", "states plan 2"),
    (row(), record({"previous_seq": 0}), "not_its_record", "plan 1"),
    (row(plan=json.dumps({**PLAN, "shadows": []})), record(), "differs", "plan"),
    (row(plan="not json"), record(), "differs", "plan"),
    (row(set_by="admin:other"), record(), "differs", "set_by"),
    (row(reason="edited"), record(), "differs", "edited"),
    (row(set_at="2026-12-02T10:00:00.000000Z"), record(), "differs", "set_at"),
    (row(audit_seq=18), record(), "differs", "audit_seq"),
])
def test_a_row_that_its_record_does_not_state_is_refused_saying_why(the_row, the_record,
                                                                    reason, words):
    refusal = plan_row_refusal(the_row, the_record, previous_seq=1)
    assert refusal is not None and refusal.reason == reason, refusal
    assert words in refusal.problem and f"plan {the_row.seq}" in refusal.problem


def signed(key=KEY, **changes):
    """A record signed by ``key`` over what it states, then given ``changes`` (rehashed)."""
    stated = json.loads(record().payload)
    stated["signature"] = sign_statement(key, {**stated, "set_by": "admin:ops"})
    return record({**stated, **changes})


@pytest.mark.parametrize(("the_record", "first", "reason"), [
    (signed(), 17, None),
    (record(), 18, None),                       # before every signed record: judged as before
    (record(), 12, "unsigned"),
    (signed(Ed25519PrivateKey.generate()), 17, "bad_signature"),
    (signed(reason="planted"), 17, "bad_signature"),
    (signed(signature="not hex"), 17, "bad_signature"),
])
def test_a_record_is_trusted_only_with_the_services_signature_once_any_is_signed(
        the_record, first, reason):
    the_row = row(reason=json.loads(the_record.payload)["reason"])
    refusal = plan_row_refusal(the_row, the_record, 1, first_signed=first,
                               public_key=KEY.public_key())
    assert (refusal and refusal.reason) == reason, refusal


def test_a_problem_quoting_a_row_is_cut_short():
    refusal = plan_row_refusal(row(plan=json.dumps({"champion": "x" * 10_000})), record(), 1)
    assert refusal.reason == "differs" and len(refusal.problem) == PROBLEM_LIMIT
