"""One contract, two implementations: stub adapters and HTTP adapters against the stub server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from datasources import SCOPES
from datasources.base import Source, empty_record
from datasources.errors import SourceError, SourceMalformed, SourceTimeout, SourceUnavailable
from datasources.http import HttpSource
from datasources.identity import InvalidNationalId
from datasources.records import CourtRecord, ProvidentFundRecord
from datasources.stub.adapters import build_stub_sources
from datasources.stub.behaviour import parse_faults
from datasources.stub.world import population_ids

from ...unit.datasources.test_stub_world import DISHONEST, MISMATCH, NO_TAX, THIN

NORMAL = population_ids(3, seed=2026)

Build = Callable[[str], dict[str, Source]]


@pytest.fixture(params=["stub", "http"])
def build(request, world, start_server, make_client) -> Build:  # type: ignore[no-untyped-def]
    """Return a function giving the five sources of one implementation, with faults."""
    def stub(faults: str = "") -> dict[str, Source]:
        return dict(build_stub_sources(world, faults=parse_faults(faults)))

    def http(faults: str = "") -> dict[str, Source]:
        client = make_client(start_server(faults))
        return {scope: HttpSource(scope, client) for scope in SCOPES}

    return stub if request.param == "stub" else http


@pytest.mark.parametrize("nid", NORMAL)
def test_a_generated_person(build, world, nid):
    sources = build("")
    assert {s: src.fetch(nid, timeout=2.0) for s, src in sources.items()} == world.records(nid)


def test_the_dishonest_debtor(build):
    court = build("")["court_records"].fetch(DISHONEST, timeout=2.0)
    assert court == CourtRecord(True, True, 2, 86000.0, 3)


def test_the_missing_tax_record(build):
    assert build("")["income_tax"].fetch(NO_TAX, timeout=2.0) == empty_record("income_tax")


def test_the_income_mismatch(build):
    sources = build("")
    fund = sources["provident_fund"].fetch(MISMATCH, timeout=2.0)
    tax = sources["income_tax"].fetch(MISMATCH, timeout=2.0)
    assert fund.monthly_base == 30000.0
    assert tax.monthly_salary_avg_12m < fund.monthly_base / 3


def test_no_account_answers(build):
    sources = build("")
    assert sources["provident_fund"].fetch(THIN, timeout=2.0) == ProvidentFundRecord.no_account()
    assert sources["social_security"].fetch(THIN, timeout=2.0).enrolled is False
    assert sources["credit_report"].fetch(THIN, timeout=2.0) == empty_record("credit_report")


@pytest.mark.parametrize(("fault", "kind", "retryable"), [
    ("hang", SourceTimeout, True),
    ("slow:2000", SourceTimeout, True),
    ("error", SourceUnavailable, True),
    ("malformed", SourceMalformed, False),
    ("wrong_schema", SourceMalformed, False),
    ("oversize", SourceMalformed, False),
    ("status:500", SourceUnavailable, True),
    ("status:403", SourceUnavailable, False),
    ("reset", SourceUnavailable, True),
])
def test_failures(build, fault, kind, retryable):
    source = build(f"income_tax={fault}")["income_tax"]
    with pytest.raises(SourceError) as caught:
        source.fetch(NORMAL[0], timeout=0.3)
    assert (type(caught.value), caught.value.retryable) == (kind, retryable)


def test_explicit_no_record(build):
    source = build("court_records=no_record")["court_records"]
    assert source.fetch(NORMAL[0], timeout=2.0) == empty_record("court_records")


def test_invalid_national_id(build):
    with pytest.raises(InvalidNationalId):
        build("")["credit_report"].fetch("110101199001011230", timeout=2.0)


def test_ids_in_lower_case(build, world):
    sources = build("")
    assert sources["income_tax"].fetch(THIN.lower(), timeout=2.0) == world.record(
        "income_tax", THIN)
