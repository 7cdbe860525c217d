"""Stub adapters: the world's records, with latency and faults that respect the call's timeout."""

from __future__ import annotations

import time

import pytest

from datasources import SCOPES
from datasources.base import Source, empty_record
from datasources.errors import SourceMalformed, SourceTimeout, SourceUnavailable
from datasources.identity import InvalidNationalId
from datasources.stub.adapters import StubSource, StubWorld, build_stub_sources
from datasources.stub.behaviour import parse_faults, parse_latency

from .fakes import NID

WORLD = StubWorld()


def source(scope: str, faults: str = "", latency: str = "", seed: int | None = 0) -> StubSource:
    return StubSource(scope, WORLD, parse_latency(latency), parse_faults(faults), seed=seed)


def test_stub_sources_answer_from_the_world():
    sources = build_stub_sources(WORLD)
    assert set(sources) == set(SCOPES)
    for scope, stub in sources.items():
        assert isinstance(stub, Source)
        assert stub.fetch(NID, timeout=1.0) == WORLD.record(scope, NID)


def test_latency_is_applied():
    started = time.perf_counter()
    source("income_tax", latency="income_tax=60").fetch(NID, timeout=1.0)
    assert time.perf_counter() - started >= 0.06


def test_hang_waits_only_the_timeout_then_times_out():
    started = time.perf_counter()
    with pytest.raises(SourceTimeout) as caught:
        source("court_records", "court_records=hang").fetch(NID, timeout=0.1)
    waited = time.perf_counter() - started
    assert 0.1 <= waited < 2.0
    assert caught.value.retryable is True


def test_slow_answers_when_the_timeout_allows_and_times_out_otherwise():
    slow = source("credit_report", "credit_report=slow:50")
    assert slow.fetch(NID, timeout=1.0) == WORLD.record("credit_report", NID)
    with pytest.raises(SourceTimeout):
        slow.fetch(NID, timeout=0.01)


def test_latency_beyond_the_timeout_times_out():
    with pytest.raises(SourceTimeout):
        source("income_tax", latency="500").fetch(NID, timeout=0.02)


def test_error_probability_is_seeded_and_roughly_right():
    def pattern(seed: int) -> list[bool]:
        flaky = source("income_tax", "income_tax=error:0.3", seed=seed)
        failed = []
        for _ in range(400):
            try:
                flaky.fetch(NID, timeout=1.0)
                failed.append(False)
            except SourceUnavailable as exc:
                assert exc.retryable is True
                failed.append(True)
        return failed

    first = pattern(seed=11)
    assert first == pattern(seed=11)
    assert first != pattern(seed=12)
    assert 0.2 < sum(first) / len(first) < 0.4


def test_error_without_probability_always_fails():
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        source("income_tax", "income_tax=error").fetch(NID, timeout=1.0)


@pytest.mark.parametrize(("fault", "error", "retryable"), [
    ("malformed", SourceMalformed, False),
    ("wrong_schema", SourceMalformed, False),
    ("oversize", SourceMalformed, False),
    ("status:500", SourceUnavailable, True),
    ("status:403", SourceUnavailable, False),
    ("reset", SourceUnavailable, True),
])
def test_faults_raise_typed_errors(fault, error, retryable):
    with pytest.raises(error) as caught:
        source("provident_fund", f"provident_fund={fault}").fetch(NID, timeout=1.0)
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.scope == "provident_fund"
    assert NID not in str(caught.value)


def test_no_record_fault_gives_the_typed_empty_answer():
    stub = source("social_security", "social_security=no_record")
    assert stub.fetch(NID, timeout=1.0) == empty_record("social_security")


def test_a_fault_applies_only_to_its_source():
    assert source("income_tax", "court_records=hang").fetch(NID, timeout=0.5) == WORLD.record(
        "income_tax", NID)


def test_bad_queries_are_refused_before_any_delay():
    stub = source("income_tax", latency="5000")
    with pytest.raises(InvalidNationalId):
        stub.fetch("110101199001011230", timeout=1.0)
    with pytest.raises(SourceTimeout, match="no time left"):
        stub.fetch(NID, timeout=0)
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        stub.fetch(NID, timeout=float("inf"))


def test_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="scope must be one of"):
        StubSource("bank_statements", WORLD)
