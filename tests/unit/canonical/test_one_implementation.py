"""Every hash of the project is taken over the one canonical form, which never changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import canonical
from audit.writer import Entry, prepare
from datasources.consent import Consent
from scoring.online.policy import Policy, load_policy
from service.persistence.idempotency import body_hash

# A decision-like payload with what is hardest to keep stable: floats written with ".0", a
# float in exponent form, negative zero, money as Decimal, a time in another zone, Chinese
# text, escapes and nesting.
PAYLOAD: dict[str, Any] = {
    "outcome": "approved",
    "grade": "B",
    "credit_limit": 20000.0,
    "annual_rate": 0.096,
    "pd": 0.0173,
    "multiplier": 8.0,
    "income": Decimal("12000.50"),
    "big": 1e16,
    "zero": -0.0,
    "decided_at": datetime(2026, 11, 3, 17, 5, 9, 120, tzinfo=timezone(timedelta(hours=8))),
    "employer": "国家电网",
    "reasons": [{"code": "R01", "text": "社保缴纳月数不足"}],
    "sources": {"tax": {"annual": 150000, "ok": True}, "court": None},
    "note": 'quote " backslash \\ newline \n',
}

# Written by the implementation that hashed the records already stored: a change here would
# leave every one of them failing verification.
PAYLOAD_JSON = (
    '{"annual_rate":0.096,"big":1e+16,"credit_limit":20000.0,'
    '"decided_at":"2026-11-03T09:05:09.000120Z","employer":"国家电网","grade":"B",'
    '"income":"12000.5","multiplier":8.0,"note":"quote \\" backslash \\\\ newline \\n",'
    '"outcome":"approved","pd":0.0173,"reasons":[{"code":"R01","text":"社保缴纳月数不足"}],'
    '"sources":{"court":null,"tax":{"annual":150000,"ok":true}},"zero":-0.0}'
).encode()
PAYLOAD_SHA256 = "fcd3e7771180f59756a59a02bad6c64530181ce6c0679ecce934a5ccd4f10dc0"


def test_the_canonical_form_of_stored_records_has_not_moved() -> None:
    assert canonical.canonical_json(PAYLOAD) == PAYLOAD_JSON
    assert canonical.digest(PAYLOAD) == PAYLOAD_SHA256


def test_audit_payload_hash_and_idempotency_body_hash_are_the_canonical_digest() -> None:
    assert prepare(Entry("decision.made", PAYLOAD)).payload_hash == PAYLOAD_SHA256
    assert body_hash(PAYLOAD) == PAYLOAD_SHA256


def test_the_consent_digest_is_the_canonical_digest_of_its_terms() -> None:
    consent = Consent(
        consent_id="同意-7",
        subject="ab" * 32,
        scopes=frozenset({"income_tax", "credit_report"}),
        purpose="credit_application",
        granted_at=datetime(2026, 10, 31, 17, 30, 0, 250, tzinfo=timezone(timedelta(hours=8))),
        expires_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        text_version="授权书-2026-01",
        channel="网页",
    )
    terms = {
        "channel": "网页",
        "consent_id": "同意-7",
        "expires_at": "2026-12-01T09:30:00Z",
        "granted_at": "2026-10-31T09:30:00.000250Z",
        "purpose": "credit_application",
        "scopes": ["credit_report", "income_tax"],
        "subject": "ab" * 32,
        "text_version": "授权书-2026-01",
    }
    assert consent.digest() == canonical.digest(terms)
    assert consent.withdraw(datetime(2026, 11, 5, tzinfo=UTC)).digest() == consent.digest()


def test_the_policy_digest_is_the_canonical_digest_of_its_document() -> None:
    doc = load_policy().doc
    assert any(isinstance(v, float) and v.is_integer() for v in _leaves(doc))  # e.g. 8.0
    assert Policy(doc).digest == canonical.digest(doc)
    changed = {**doc, "product": {**doc["product"], "zh": doc["product"]["zh"] + "。"}}
    assert Policy(changed).digest == canonical.digest(changed) != Policy(doc).digest


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]
