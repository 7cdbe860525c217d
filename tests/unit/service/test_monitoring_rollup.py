"""The roll-up's pieces: windows of whole buckets, a decision's cells, percentiles read from
latency bins, and fairness ratios."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasources.identity import make_national_id, parse_national_id
from service.usecases.monitoring.cells import (
    LATENCY_EDGES_MS,
    bin_bounds,
    decision_cells,
    latency_bin,
)
from service.usecases.monitoring.dashboard import quantile
from service.usecases.monitoring.fairness import MIN_GROUP, fairness_of
from service.usecases.monitoring.groups import Groups, age_band, groups_of
from service.usecases.monitoring.windows import GRAINS, WINDOWS, Window, bucket_key

NOW = datetime(2026, 11, 29, 14, 52, 30, tzinfo=UTC)


@pytest.mark.parametrize(("name", "start", "buckets"), [
    ("hour", "2026-11-29T13:50", 13), ("day", "2026-11-28T14", 25),
    ("7d", "2026-11-22", 8), ("30d", "2026-10-30", 31)])
def test_a_window_is_whole_buckets_reaching_back_at_least_its_length(name, start, buckets):
    window = Window.of(name, end=NOW)
    assert window.first_bucket() == start
    assert window.last_bucket() == bucket_key(NOW, window.grain)
    assert len(window.series_buckets()) == buckets
    length = WINDOWS[name].length
    assert length <= window.end - window.start < length + GRAINS[window.grain]


def test_a_window_the_roll_up_no_longer_keeps_is_known():
    assert Window.of("30d", end=NOW, by="hour").kept(NOW)
    assert Window.of("hour", end=NOW - timedelta(hours=1, minutes=50), by=None).kept(NOW)
    assert not Window.of("hour", end=NOW - timedelta(hours=2, minutes=10)).kept(NOW)
    assert not Window.of("day", end=NOW - timedelta(days=32)).kept(NOW)
    assert Window.of("30d", end=NOW - timedelta(days=400)).kept(NOW)   # days are kept


def test_a_long_window_may_be_drawn_by_hour_but_an_hour_not_by_day():
    assert len(Window.of("7d", end=NOW, by="hour").series_buckets()) == 7 * 24 + 15
    with pytest.raises(ValueError, match="by must be one of 5m for the window hour; got 'day'"):
        Window.of("hour", end=NOW, by="day")
    with pytest.raises(ValueError, match="window must be one of"):
        Window.of("week", end=NOW)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_a_latency_falls_in_the_bin_whose_bounds_hold_it(ms):
    low, high = bin_bounds(latency_bin(ms))
    assert low <= ms and (ms < high or latency_bin(ms) == len(LATENCY_EDGES_MS))


def test_a_percentile_read_from_the_bins_is_within_a_bin_of_the_true_one():
    values = [0.5 + i * 0.37 for i in range(1000)]
    counts: dict[int, int] = {}
    for v in values:
        counts[latency_bin(v)] = counts.get(latency_bin(v), 0) + 1
    for q in (0.5, 0.99):
        true = sorted(values)[int(q * len(values)) - 1]
        assert quantile(counts, q) == pytest.approx(true, rel=0.1)
    assert quantile({}, 0.5) is None


def test_a_groups_sex_age_band_and_province_come_from_the_national_id():
    man = parse_national_id(make_national_id("330106", datetime(1990, 5, 1).date(), 13))
    woman = parse_national_id(make_national_id("440305", datetime(2001, 1, 1).date(), 12))
    assert groups_of(man, 36) == Groups("male", "35-44", "33")
    assert groups_of(woman, 25) == Groups("female", "25-34", "44")
    assert [age_band(a) for a in (18, 24, 25, 54, 55, 90)] == [
        "18-24", "18-24", "25-34", "45-54", "55+", "55+"]


PAYLOAD = {"outcome": "declined", "model_version": "v1",
           "decision": {"credit_limit": 0.0, "grade": "E", "score": 480, "pd": 0.2},
           "reason_codes": ["CR02", "K05"], "features": {},
           "sources": {"credit_report": {"status": "ok", "latency_ms": 3.0},
                       "income_tax": {"status": "timeout", "latency_ms": 2000.0}},
           "decided_ms": 2100.0}


def test_a_declines_cells_name_its_reasons_sources_and_groups():
    cells = decision_cells(PAYLOAD, groups=Groups("female", "25-34", "44"),
                           durations_ms={"sources_gathered": 2000.0},
                           opened_breakers=["income_tax"], references={"v1": None})
    assert cells[("outcome", "declined")] == [1, 0.0]
    assert cells[("reason", "CR02")] == cells[("reason", "K05")] == [1, 0.0]
    assert cells[("source", "income_tax|timeout")] == [1, 2000.0]
    assert cells[("breaker", "income_tax")] == [1, 0.0]
    assert cells[("latency", str(latency_bin(2100.0)))] == [1, 2100.0]
    assert cells[("fair", "sex|female|declined")] == [1, 0.0]
    assert cells[("fair_pd", "province|44")] == [1, 0.2]
    assert ("grade", "E") not in cells   # the grade mix is of approvals


def test_an_unscored_deferral_counts_its_outcome_and_sources_only():
    payload = {"outcome": "deferred", "sources": PAYLOAD["sources"], "decided_ms": 5.0}
    cells = decision_cells(payload, groups=None, durations_ms={}, opened_breakers=(),
                           references={})
    assert {metric for metric, _ in cells} == {"outcome", "source", "source_ms", "latency"}


def fair_cells(groups: dict[str, tuple[int, int]]) -> dict:
    sums = {}
    for group, (approved, declined) in groups.items():
        sums[("fair", f"sex|{group}|approved")] = (approved, approved * 20000.0)
        sums[("fair", f"sex|{group}|declined")] = (declined, 0.0)
        sums[("fair_pd", f"sex|{group}")] = (approved + declined, 0.05 * (approved + declined))
    return sums


def test_a_group_below_four_fifths_of_the_most_favoured_is_flagged():
    result = fairness_of(fair_cells({"male": (60, 40), "female": (45, 55)}))
    (sex,) = [d for d in result["dimensions"] if d["dimension"] == "sex"]
    by = {g["group"]: g for g in sex["groups"]}
    assert sex["most_favoured"] == "male" and sex["flagged"] == ["female"]
    assert by["female"]["approval_ratio"] == pytest.approx(0.75)
    assert by["male"]["approval_ratio"] == 1.0 and not by["male"]["flagged"]
    assert by["female"]["mean_pd"] == pytest.approx(0.05)
    assert by["female"]["line_ratio"] == pytest.approx(1.0)


def test_a_group_too_small_to_judge_is_named_with_its_figures_withheld():
    result = fairness_of(fair_cells({"male": (60, 40), "female": (1, MIN_GROUP - 2)}))
    (sex,) = [d for d in result["dimensions"] if d["dimension"] == "sex"]
    by = {g["group"]: g for g in sex["groups"]}
    assert by["female"]["too_few"] and not by["female"]["flagged"]
    assert sex["flagged"] == []
    assert {k: by["female"][k] for k in ("applications", "approval_rate", "mean_pd",
                                         "mean_line", "approval_ratio")} == dict.fromkeys(
        ("applications", "approval_rate", "mean_pd", "mean_line", "approval_ratio"))
    assert by["male"]["applications"] == 100
