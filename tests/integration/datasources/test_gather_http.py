"""The gatherer over HTTP adapters and the real stub server."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from datasources import SCOPES
from datasources.gather import Gatherer
from datasources.http import HttpSource

from ...unit.datasources.fakes import (
    NID,
    NOW,
    SUBJECT,
    Recording,
    all_overlap,
    gate_for,
    make_consent,
    wait_until,
)


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def http_sources(client):  # type: ignore[no-untyped-def]
    return {scope: HttpSource(scope, client) for scope in SCOPES}


@pytest.mark.parametrize("refusal", ["scope_not_covered", "expired", "withdrawn"])
def test_refused_scopes_send_no_request(start_server, make_client, refusal):
    server = start_server()
    consent = {
        "scope_not_covered": make_consent(scopes={"credit_report", "court_records"}),
        "expired": make_consent(expires_at=NOW - timedelta(seconds=1),
                                granted_at=NOW - timedelta(days=90)),
        "withdrawn": make_consent().withdraw(NOW - timedelta(hours=1)),
    }[refusal]
    gate, _ = gate_for(consent)
    with Gatherer(http_sources(make_client(server)), gate) as gatherer:
        result = gatherer.gather(NID, SUBJECT, "c-1", SCOPES)
    refused = {s for s, o in result.outcomes.items() if o.status == "consent_refused"}
    if refusal == "scope_not_covered":
        assert refused == {"provident_fund", "social_security", "income_tax"}
        assert server.request_counts == {"credit_report": 1, "court_records": 1}
    else:
        assert refused == set(SCOPES)
        assert sum(server.request_counts.values()) == 0


def test_five_slow_sources_overlap_over_http(start_server, make_client):
    server = start_server(latency="300")
    sources = {s: Recording(src) for s, src in http_sources(make_client(server)).items()}
    gate, _ = gate_for(make_consent())
    with Gatherer(sources, gate) as gatherer:
        result = gatherer.gather(NID, SUBJECT, "c-1", SCOPES)
    assert result.sufficient
    assert all_overlap(iv for src in sources.values() for iv in src.intervals)
    assert result.elapsed_ms < 5 * 300  # sanity only


def test_hung_source_over_http(start_server, make_client):
    server = start_server("court_records=hang")
    gate, _ = gate_for(make_consent())
    with Gatherer(http_sources(make_client(server)), gate, deadline_s=0.5,
                  threads_per_source=1) as gatherer:
        started = time.perf_counter()
        result = gatherer.gather(NID, SUBJECT, "c-1", SCOPES)
        assert time.perf_counter() - started < 2.0
        assert result.outcomes["court_records"].status == "timeout"
        assert not result.sufficient
        assert wait_until(lambda: gatherer.in_flight() == 0)
        assert gatherer.pool_threads() <= 5
    assert wait_until(lambda: server.in_progress == 0)


def test_every_wire_failure_at_once(start_server, make_client):
    server = start_server("provident_fund=status:500,social_security=reset,"
                          "income_tax=malformed,credit_report=wrong_schema,court_records=oversize")
    gate, _ = gate_for(make_consent())
    with Gatherer(http_sources(make_client(server)), gate, backoff_base_s=0.001) as gatherer:
        result = gatherer.gather(NID, SUBJECT, "c-1", SCOPES)
    assert result.statuses() == {"provident_fund": "unavailable", "social_security": "unavailable",
                                 "income_tax": "malformed", "credit_report": "malformed",
                                 "court_records": "malformed"}
    assert result.outcomes["provident_fund"].attempts == 3  # retryable
    assert result.outcomes["income_tax"].attempts == 1  # not retryable
    assert server.request_counts["provident_fund"] == 3


def test_breaker_over_http_fails_fast_then_recovers(start_server, make_client):
    server = start_server("credit_report=status:503")
    clock = Clock()
    gate, _ = gate_for(make_consent())
    with Gatherer(http_sources(make_client(server)), gate, max_attempts=1, breaker_threshold=2,
                  breaker_cooldown_s=10, clock=clock) as gatherer:
        for _ in range(2):
            gatherer.gather(NID, SUBJECT, "c-1", ["credit_report"])
        assert gatherer.breaker_states()["credit_report"] == "open"
        fast = gatherer.gather(NID, SUBJECT, "c-1", ["credit_report"]).outcomes["credit_report"]
        assert fast.status == "circuit_open"
        assert server.request_counts["credit_report"] == 2
        server.faults = type(server.faults)()  # the source recovers
        clock.now += 10
        healed = gatherer.gather(NID, SUBJECT, "c-1", ["credit_report"]).outcomes["credit_report"]
        assert healed.status == "ok"
        assert gatherer.breaker_states()["credit_report"] == "closed"
