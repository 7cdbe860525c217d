"""Acceptance: a query without a covering live consent does no I/O and raises the consent error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from datasources import SCOPES
from datasources.errors import ConsentMissing
from datasources.gather import Gatherer, authorised_fetch

from .fakes import NID, NOW, SUBJECT, CountingSource, counting_sources, gate_for, make_consent

OTHERS = {scope: [s for s in SCOPES if s != scope] for scope in SCOPES}

REFUSALS = {
    "scope_not_covered": lambda scope: make_consent(scopes=OTHERS[scope]),
    "expired": lambda scope: make_consent(granted_at=NOW - timedelta(days=400),
                                          expires_at=NOW - timedelta(seconds=1)),
    "withdrawn": lambda scope: make_consent(withdrawn_at=NOW - timedelta(minutes=5)),
}


@pytest.mark.parametrize("why", sorted(REFUSALS))
@pytest.mark.parametrize("scope", SCOPES)
def test_refused_query_raises_before_calling_the_source(scope, why):
    gate, _ = gate_for(REFUSALS[why](scope))
    source = CountingSource(scope)
    with pytest.raises(ConsentMissing) as caught:
        authorised_fetch(gate, source, NID, subject=SUBJECT, consent_id="c-1", timeout=1.0)
    assert caught.value.why == why
    assert source.calls == 0


@pytest.mark.parametrize("why", sorted(REFUSALS))
@pytest.mark.parametrize("scope", SCOPES)
def test_gatherer_does_not_call_a_refused_source(scope, why):
    gate, _ = gate_for(REFUSALS[why](scope))
    sources = counting_sources()
    with Gatherer(sources, gate, deadline_s=5) as gatherer:
        result = gatherer.gather(NID, SUBJECT, "c-1", SCOPES)
    refused = result.outcomes[scope]
    assert (refused.status, refused.attempts, refused.record) == ("consent_refused", 0, None)
    assert refused.consent_id is None
    assert why in (refused.error or "")
    assert sources[scope].calls == 0
    if why == "scope_not_covered":  # the consent still covers the other four
        assert all(result.outcomes[s].status == "ok" for s in OTHERS[scope])
        assert all(sources[s].calls == 1 for s in OTHERS[scope])
    else:
        assert all(source.calls == 0 for source in sources.values())


@pytest.mark.parametrize("scope", SCOPES)
def test_consent_of_another_person_calls_nothing(scope):
    gate, _ = gate_for(make_consent())
    source = CountingSource(scope)
    with pytest.raises(ConsentMissing, match="other_subject"):
        authorised_fetch(gate, source, NID, subject="hmac-of-someone-else", consent_id="c-1",
                         timeout=1.0)
    assert source.calls == 0


def test_covered_query_returns_the_record_and_its_authorisation():
    consent = make_consent()
    gate, _ = gate_for(consent)
    source = CountingSource("income_tax")
    record, auth = authorised_fetch(gate, source, NID, subject=SUBJECT, consent_id="c-1",
                                    timeout=1.0)
    assert record == source.script[0]
    assert (auth.consent_id, auth.consent_digest) == ("c-1", consent.digest())
    assert source.calls == 1
