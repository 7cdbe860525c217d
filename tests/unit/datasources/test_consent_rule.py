"""The consent rule, stated once: this channel's, this applicant's, live now, these scopes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from datasources import SCOPES
from datasources.consent import (
    EXPIRED,
    LIVE,
    NOT_YET_VALID,
    OTHER_CHANNEL,
    OTHER_PURPOSE,
    OTHER_SUBJECT,
    SCOPE_NOT_COVERED,
    WITHDRAWN,
    ConsentRefused,
)
from datasources.errors import ConsentMissing

from .fakes import NOW, SUBJECT, gate_for, make_consent

CHANNEL = "app-ios"  # the channel of make_consent()
TICK = timedelta(microseconds=1)


def refusal(consent, *, subject=SUBJECT, channel=CHANNEL, scopes=SCOPES, now=NOW):
    """The rule's refusal of ``consent``, or None if it allows the query."""
    try:
        consent.check_for(subject=subject, channel=channel, scopes=scopes, now=now)
    except ConsentRefused as refused:
        return refused
    return None


def test_a_live_consent_of_this_channel_and_applicant_allows_its_scopes():
    assert refusal(make_consent()) is None
    assert refusal(make_consent(scopes={"credit_report"}), scopes=["credit_report"]) is None


@pytest.mark.parametrize(("consent", "asked", "why"), [
    (make_consent(), {"channel": "web"}, OTHER_CHANNEL),
    (make_consent(), {"subject": "hmac-of-someone-else"}, OTHER_SUBJECT),
    (make_consent(purpose="marketing"), {}, OTHER_PURPOSE),
    (make_consent(withdrawn_at=NOW - timedelta(minutes=5)), {}, WITHDRAWN),
    (make_consent(expires_at=NOW - timedelta(seconds=1)), {}, EXPIRED),
    (make_consent(granted_at=NOW + timedelta(minutes=1), expires_at=NOW + timedelta(days=1)),
     {}, NOT_YET_VALID),
    (make_consent(scopes={"credit_report"}), {}, SCOPE_NOT_COVERED),
])
def test_each_part_of_the_rule_refuses_and_says_which(consent, asked, why):
    refused = refusal(consent, **asked)
    assert refused is not None and refused.why == why
    assert why in str(refused) and SUBJECT not in str(refused)


def test_liveness_boundaries():
    # expires_at is the first instant the consent is no longer in force.
    expiring = make_consent(expires_at=NOW)
    assert refusal(expiring, now=NOW).why == EXPIRED
    assert refusal(expiring, now=NOW - TICK) is None
    # granted_at is the first instant it is; a consent granted later is not yet in force.
    granted = make_consent(granted_at=NOW, expires_at=NOW + timedelta(days=1))
    assert refusal(granted, now=NOW) is None
    assert refusal(granted, now=NOW - TICK).why == NOT_YET_VALID
    future = make_consent(granted_at=NOW + TICK, expires_at=NOW + timedelta(days=1))
    assert refusal(future, now=NOW).why == NOT_YET_VALID
    # A withdrawal ends it from its very moment.
    withdrawn = make_consent(withdrawn_at=NOW)
    assert refusal(withdrawn, now=NOW).why == WITHDRAWN
    assert refusal(withdrawn, now=NOW - TICK) is None


@pytest.mark.parametrize(("changes", "now", "state"), [
    ({}, NOW, LIVE),
    ({"expires_at": NOW}, NOW, EXPIRED),
    ({"granted_at": NOW + TICK, "expires_at": NOW + timedelta(days=1)}, NOW, NOT_YET_VALID),
    ({"withdrawn_at": NOW}, NOW, WITHDRAWN),
    ({"withdrawn_at": NOW + TICK}, NOW, LIVE),
    # Withdrawn and expired: the withdrawal is what the person did, so it is what is said.
    ({"expires_at": NOW, "withdrawn_at": NOW - timedelta(days=1)}, NOW, WITHDRAWN),
])
def test_state_at_names_why_a_consent_is_not_live(changes, now, state):
    consent = make_consent(**changes)
    assert consent.state_at(now) == state
    assert consent.is_live(now) is (state == LIVE)


def test_every_scope_asked_must_be_covered_and_the_missing_are_named_in_order():
    consent = make_consent(scopes={"credit_report", "court_records"})
    asked = ["income_tax", "credit_report", "provident_fund", "income_tax"]
    refused = refusal(consent, scopes=asked)
    assert refused.why == SCOPE_NOT_COVERED
    assert refused.missing == ("income_tax", "provident_fund")
    assert "income_tax, provident_fund" in refused.detail


def test_the_channel_is_checked_first_so_nothing_is_told_of_another_channels_consent():
    consent = make_consent(withdrawn_at=NOW - timedelta(days=1), scopes={"credit_report"})
    assert refusal(consent, channel="web", subject="hmac-of-someone-else").why == OTHER_CHANNEL
    assert refusal(consent, subject="hmac-of-someone-else").why == OTHER_SUBJECT
    assert refusal(consent).why == WITHDRAWN  # liveness before scopes


def test_no_channel_means_no_channel_is_acting():
    assert refusal(make_consent(), channel=None) is None
    assert refusal(make_consent(), channel=None, subject="someone-else").why == OTHER_SUBJECT


CASES = [
    make_consent(),
    make_consent(purpose="marketing"),
    make_consent(withdrawn_at=NOW - TICK),
    make_consent(expires_at=NOW),
    make_consent(granted_at=NOW + TICK, expires_at=NOW + timedelta(days=1)),
    make_consent(scopes={"credit_report"}),
    make_consent(withdrawn_at=NOW - TICK, scopes={"credit_report"}),
]


@pytest.mark.parametrize("consent", CASES)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(("subject", "channel"), [
    (SUBJECT, CHANNEL), (SUBJECT, "web"), ("someone-else", CHANNEL), (SUBJECT, None)])
def test_the_gate_decides_each_source_call_by_the_same_rule(consent, scope, subject, channel):
    gate, _ = gate_for(consent)
    expected = refusal(consent, subject=subject, channel=channel, scopes=[scope])
    if expected is None:
        assert gate.authorise("c-1", scope, subject, channel=channel).scope == scope
        return
    with pytest.raises(ConsentMissing) as caught:
        gate.authorise("c-1", scope, subject, channel=channel)
    assert (caught.value.why, caught.value.scope) == (expected.why, scope)
    assert str(caught.value) == f"{scope}: {expected}"
