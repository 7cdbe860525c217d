"""The stub world: deterministic people, a bounded cache and fixtures laid over."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import datasources.stub
from datasources import SCOPES
from datasources.base import empty_record
from datasources.records import RECORD_TYPES, CourtRecord, ProvidentFundRecord
from datasources.stub.adapters import StubWorld
from datasources.stub.world import population_ids

from .fakes import NID

EXAMPLE = Path(datasources.stub.__file__).with_name("fixtures.example.json")
DISHONEST, NO_TAX, MISMATCH, THIN = ("11010119850307011X", "310104199208150230",
                                     "440305198811200353", "51010720010602047X")


def test_same_id_same_records_in_any_world():
    first, second = StubWorld().records(NID), StubWorld().records(NID)
    assert first == second
    assert set(first) == set(SCOPES)
    assert all(isinstance(first[s], RECORD_TYPES[s]) for s in SCOPES)


def test_ids_are_normalised():
    world = StubWorld()
    assert world.records(THIN.lower()) == world.records(THIN)


def test_cache_is_bounded_and_still_deterministic():
    world = StubWorld(cache_size=2)
    ids = population_ids(4, seed=3)
    before = [world.records(nid) for nid in ids]
    assert len(world._cache) == 2
    assert [world.records(nid) for nid in ids] == before


def test_world_is_safe_under_threads():
    world = StubWorld(cache_size=8)
    ids = population_ids(16, seed=5)
    expected = {nid: StubWorld().records(nid) for nid in ids}
    failures: list[str] = []

    def read() -> None:
        for nid in ids * 3:
            if world.records(nid) != expected[nid]:
                failures.append(nid)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_example_fixtures_stage_the_documented_people():
    world = StubWorld.from_file(EXAMPLE)
    plain = StubWorld()
    assert world.fixture_ids == {DISHONEST, NO_TAX, MISMATCH, THIN}
    dishonest = world.records(DISHONEST)
    assert dishonest["court_records"] == CourtRecord(True, True, 2, 86000.0, 3)
    assert dishonest["credit_report"].overdue_now is True
    assert dishonest["credit_report"].cards == plain.record("credit_report", DISHONEST).cards
    assert world.record("income_tax", NO_TAX) == empty_record("income_tax")
    mismatch = world.records(MISMATCH)
    assert mismatch["provident_fund"].monthly_base == 30000.0
    assert mismatch["income_tax"].monthly_salary_avg_12m < 10000
    assert world.record("provident_fund", THIN) == ProvidentFundRecord.no_account()
    assert world.record("credit_report", THIN) == empty_record("credit_report")
    assert world.records(NID) == plain.records(NID)  # everyone else is untouched


def test_full_record_fixture_replaces_the_generated_one():
    court = {"dishonest_debtor": True, "consumption_restricted": False, "enforcement_open": 1,
             "enforcement_amount": 5000, "lawsuits_5y": 0}
    world = StubWorld({NID: {"court_records": court, "_note": "ignored"}, "_about": "x"})
    assert world.record("court_records", NID).to_dict() == {**court, "enforcement_amount": 5000.0}


@pytest.mark.parametrize(("fixtures", "message"), [
    ([], "must be a JSON object keyed by national ID"),
    ({"123": {}}, "key '123' must be a valid national ID"),
    ({NID: []}, "must be an object of source records"),
    ({NID: {"bank": {}}}, "source must be one of"),
    ({NID: {"income_tax": "missing"}}, "must be a record object, null or one of"),
    ({NID: {"income_tax": {"salary": 1}}}, "income_tax must be a valid record; IncomeTaxRecord "
                                           "has unknown fields: salary"),
    ({NID: {"court_records": {"lawsuits_5y": -1}}}, "lawsuits_5y must be a non-negative"),
])
def test_bad_fixtures_fail_at_construction(fixtures, message):
    with pytest.raises(ValueError, match=message):
        StubWorld(fixtures)


def test_fixture_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "fixtures.json"
    broken.write_text('{"x": ', encoding="utf-8")
    with pytest.raises(ValueError, match=r"fixtures\.json' must be JSON; got an error at line 1"):
        StubWorld.from_file(broken)
    with pytest.raises(ValueError, match="must be readable"):
        StubWorld.from_file(tmp_path / "absent.json")
    broken.write_text(json.dumps({NID: {"income_tax": None}}), encoding="utf-8")
    assert StubWorld.from_file(broken).record("income_tax", NID) == empty_record("income_tax")


def test_no_fixture_path_means_no_fixtures():
    assert StubWorld.from_file(None).fixture_ids == frozenset()
    with pytest.raises(ValueError, match="cache_size must be at least 1"):
        StubWorld(cache_size=0)
