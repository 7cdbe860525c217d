"""The consent rule as the service uses it: the flow's consent step, the view, the selections.

The flow's step is exercised through its entry point, with in-memory fakes of its ports.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, insert, select

from audit import Pseudonymiser
from datasources import SCOPES
from datasources.consent import Consent
from service.domain.encoding import dumps, now_text
from service.domain.errors import ConsentInsufficient, ConsentInvalid
from service.domain.principal import Principal
from service.persistence.tables import consents
from service.usecases.consents import lapsed_at, live_at, to_view
from tests.unit.service.fakes import PII_KEY, build_flow, shipped_plan, world_records

NID = "610113197807183315"
ANOTHER = "210102196911057687"
SUBJECT = Pseudonymiser(PII_KEY).national_id(NID)
CHANNEL = "bank-app"
REQUIRED = ("provident_fund", "social_security", "income_tax", "credit_report",
            "court_records")
PRINCIPAL = Principal(key_id="k1", name=CHANNEL, role="channel")


def consent(**changes) -> Consent:
    now = datetime.now(UTC)
    return Consent(**{"consent_id": "c_1", "subject": SUBJECT, "scopes": frozenset(SCOPES),
                      "purpose": "credit_application", "granted_at": now - timedelta(days=1),
                      "expires_at": now + timedelta(days=29), "text_version": "v1",
                      "channel": CHANNEL, **changes})


@pytest.fixture(scope="module")
def check():
    """Apply, citing ``consent_id``, for the applicant ``national_id`` with ``cited`` the one
    consent on file; return the consent the sources were then asked under."""
    live = shipped_plan()
    assert live.champion.engine.policy.required_scopes == REQUIRED
    records = world_records(NID, ANOTHER)

    def apply(cited: Consent | None, consent_id: str = "c_1", national_id: str = NID):
        parts = build_flow(live, [cited] if cited else [], records)
        body = {"applicant": {"national_id": national_id, "name": "张三",
                              "mobile": "13812348000"},
                "request": {"amount": 20000, "term_months": 12, "purpose": "travel"},
                "consent_id": consent_id}
        try:
            parts.flow.apply(PRINCIPAL, body, None)
        except (ConsentInvalid, ConsentInsufficient):
            # Refused before any source is asked, and nothing is recorded.
            assert parts.gatherer.calls == []
            assert parts.database.tables == {}
            raise
        (call,) = parts.gatherer.calls
        assert call["consent_id"] == consent_id and call["scopes"] == REQUIRED
        return call["consent"]

    return apply


def test_a_live_consent_of_this_channel_and_applicant_covering_every_scope_is_used(check):
    cited = consent()
    assert check(cited) is cited


NO_SUCH = ("consent_id does not name a consent of this channel", "no such consent")
NOW = datetime.now(UTC)


@pytest.mark.parametrize(("cited", "consent_id", "national_id", "message", "field"), [
    (None, "c_1", NID, *NO_SUCH),
    (consent(), "c_other", NID, *NO_SUCH),
    # Another channel's consent is not found: a channel learns nothing of it, not even
    # that it is another applicant's.
    (consent(channel="other-bank"), "c_1", NID, *NO_SUCH),
    (consent(channel="other-bank"), "c_1", ANOTHER, *NO_SUCH),
    (consent(), "c_1", ANOTHER, "the consent belongs to another applicant",
     "consent belongs to another applicant"),
    (consent(withdrawn_at=NOW - timedelta(minutes=1)), "c_1", NID,
     "the consent is withdrawn", "consent is withdrawn"),
    (consent(granted_at=NOW - timedelta(days=30), expires_at=NOW - timedelta(seconds=1)),
     "c_1", NID, "the consent is expired", "consent is expired"),
    (consent(granted_at=NOW + timedelta(hours=1), expires_at=NOW + timedelta(days=30)),
     "c_1", NID, "the consent is not yet in force", "consent is not yet in force"),
    (consent(purpose="marketing"), "c_1", NID,
     "the consent is not for a credit application", "consent is not for a credit application"),
])
def test_a_consent_that_does_not_allow_the_application_is_invalid(check, cited, consent_id,
                                                                  national_id, message, field):
    with pytest.raises(ConsentInvalid) as caught:
        check(cited, consent_id, national_id)
    assert (caught.value.code, caught.value.message) == ("consent_invalid", message)
    assert caught.value.fields == {"consent_id": [field]}


def test_a_consent_missing_required_scopes_is_insufficient_and_names_them_in_policy_order(
        check):
    with pytest.raises(ConsentInsufficient) as caught:
        check(consent(scopes=frozenset({"court_records", "credit_report", "social_security"})))
    assert caught.value.code == "consent_insufficient"
    assert caught.value.message == "the consent does not cover: provident_fund, income_tax"
    assert caught.value.fields == {"consent_id": ["missing scopes: provident_fund, income_tax"]}


def test_a_lapsed_consent_is_told_as_lapsed_before_its_scopes(check):
    lapsed = consent(withdrawn_at=NOW - timedelta(minutes=1), scopes=frozenset({"income_tax"}))
    with pytest.raises(ConsentInvalid, match="withdrawn"):
        check(lapsed)


# -- the consent's state as the service shows and selects it -----------------------------------

TICK = timedelta(microseconds=1)
STATES = {
    "c_live": ({}, "live"),
    "c_granted_now": ({"granted_at": NOW}, "live"),
    "c_pending": ({"granted_at": NOW + TICK, "expires_at": NOW + timedelta(days=1)},
                  "pending"),
    "c_expires_now": ({"expires_at": NOW}, "expired"),
    "c_withdrawn_now": ({"withdrawn_at": NOW}, "withdrawn"),
    "c_withdrawn_later": ({"withdrawn_at": NOW + TICK}, "live"),
    "c_withdrawn_and_expired": ({"withdrawn_at": NOW - timedelta(hours=1), "expires_at": NOW},
                                "withdrawn"),
}


def consent_row(consent_id: str, changes: dict) -> dict:
    """A row of the consents table, as ConsentBook writes it."""
    made = consent(**{"consent_id": consent_id, "granted_at": NOW - timedelta(days=1),
                      "expires_at": NOW + timedelta(days=29), **changes})
    return {"consent_id": made.consent_id, "subject": made.subject, "channel": made.channel,
            "key_id": "k1", "scopes": dumps(sorted(made.scopes)), "purpose": made.purpose,
            "granted_at": now_text(made.granted_at), "expires_at": now_text(made.expires_at),
            "text_version": made.text_version, "created_at": now_text(NOW),
            "withdrawn_at": None if made.withdrawn_at is None else now_text(made.withdrawn_at)}


@pytest.fixture(scope="module")
def consents_table():
    engine = create_engine("sqlite://")
    consents.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(consents), [consent_row(cid, changes)
                                        for cid, (changes, _) in STATES.items()])
    yield engine
    engine.dispose()


@pytest.mark.parametrize("consent_id", sorted(STATES))
def test_the_consent_view_names_the_rules_state(consent_id):
    row = SimpleNamespace(**consent_row(consent_id, STATES[consent_id][0]))
    assert to_view(row, NOW)["status"] == STATES[consent_id][1]


def test_the_sql_selections_agree_with_the_rule(consents_table):
    with consents_table.connect() as conn:
        live = set(conn.execute(select(consents.c.consent_id).where(live_at(NOW))).scalars())
        lapsed = set(conn.execute(
            select(consents.c.consent_id).where(lapsed_at(NOW))).scalars())
    assert live == {cid for cid, (_, state) in STATES.items() if state == "live"}
    assert lapsed == {cid for cid, (_, state) in STATES.items()
                      if state in ("withdrawn", "expired")}
