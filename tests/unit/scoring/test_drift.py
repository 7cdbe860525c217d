"""Drift reference: bins of a training split, and the PSI of a live population against them."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scoring.governance.drift import (
    ACT,
    MISSING,
    WATCH,
    Bins,
    DriftReference,
    bins_for,
    build_drift_reference,
    level,
    psi,
)


def test_continuous_values_get_equal_frequency_bins():
    values = np.random.default_rng(1).normal(size=10_000)
    bins = bins_for(values)
    assert len(bins.edges) == 9 and list(bins.edges) == sorted(bins.edges)
    assert bins.shares == pytest.approx([0.1] * 10, abs=0.002)
    assert bins.missing == 0.0 and bins.values is None
    # Six significant digits: short in the card, and the shares are counted with them.
    assert all(len(f"{abs(e):e}".split("e")[0].replace(".", "").rstrip("0")) <= 6
               for e in bins.edges)
    assert bins.shares == tuple(round(n / values.size, 6)
                                for n in list(bins.counts_of(values).values())[:-1])


def test_missing_values_have_their_own_share():
    values = np.r_[np.arange(100.0), [np.nan] * 25]
    bins = bins_for(values)
    assert bins.missing == 0.2
    assert sum(bins.shares) + bins.missing == pytest.approx(1.0)
    assert bins.counts_of(values)[MISSING] == 25


def test_a_discrete_variable_gets_one_bin_per_value_cut_midway():
    bins = bins_for(np.array([0, 1, 1, 2, 2, 2, np.nan, 5.0]))
    assert bins.edges == (0.5, 1.5, 3.5)
    assert bins.shares == (0.125, 0.25, 0.375, 0.125) and bins.missing == 0.125
    assert bins.labels() == {"0": "0", "1": "1", "2": "2", "3": "5", MISSING: "missing"}


def test_a_variable_with_more_values_than_bins_is_not_discrete():
    bins = bins_for(np.arange(12.0), max_bins=10)
    assert bins.values is None
    assert bins_for(np.arange(10.0), max_bins=10).values == tuple(np.arange(10.0))


def test_cut_points_that_coincide_at_a_mass_of_zeros_are_kept_once():
    rng = np.random.default_rng(2)
    values = np.where(rng.random(5000) < 0.6, 0.0, rng.exponential(size=5000))
    bins = bins_for(values)
    assert bins.edges[0] == 0.0 and len(set(bins.edges)) == len(bins.edges) < 9
    assert bins.shares[0] == pytest.approx(0.6, abs=0.02)
    assert bins.labels()["0"] == "≤ 0"


def test_a_constant_variable_has_one_bin():
    bins = bins_for(np.full(50, 3.0))
    assert bins.edges == () and bins.shares == (1.0,) and bins.missing == 0.0
    assert bins.labels() == {"0": "3", MISSING: "missing"}
    assert bins.counts_of(np.array([-1e9, 3.0, 7.5, np.nan])) == {"0": 3, MISSING: 1}


def test_a_variable_always_missing_has_one_empty_bin():
    bins = bins_for(np.full(20, np.nan))
    assert bins.shares == (0.0,) and bins.missing == 1.0
    assert bins.labels()["0"] == "any value"


def test_bins_for_refuses_no_rows_and_no_bins():
    with pytest.raises(ValueError, match="values must hold at least one row; got none"):
        bins_for(np.array([]))
    with pytest.raises(ValueError, match="max_bins must be at least 1; got 0"):
        bins_for(np.arange(5.0), max_bins=0)


def test_labels_name_each_range_shortly():
    bins = Bins((0.25, 0.5, 3.0), (0.1, 0.2, 0.3, 0.4), 0.0)
    assert bins.keys() == ["0", "1", "2", "3", MISSING]
    assert bins.labels() == {"0": "≤ 0.25", "1": "0.25–0.5", "2": "0.5–3", "3": "> 3",
                             MISSING: "missing"}


def test_a_value_on_a_cut_point_falls_into_the_bin_below():
    bins = Bins((0.25, 0.5, 3.0), (0.1, 0.2, 0.3, 0.4), 0.0)
    assert [bins.key_of(v) for v in (-5, 0.25, 0.2500001, 0.5, 3.0, 3.5, math.inf)] == [
        "0", "0", "1", "1", "2", "3", "3"]
    assert bins.key_of(None) == MISSING and bins.key_of(math.nan) == MISSING


_values = arrays(np.float64, st.integers(1, 300),
                 elements=st.one_of(st.floats(-1e7, 1e7), st.just(math.nan),
                                    st.sampled_from([0.0, 1.0, 2.0])))


@given(_values, st.integers(1, 12))
def test_key_of_and_counts_of_agree_with_each_other_and_with_the_edges(values, max_bins):
    bins = bins_for(values, max_bins=max_bins)
    distinct = np.unique(values[~np.isnan(values)]).size
    if distinct <= max_bins:
        # One bin per value (or one bin, when every value is missing).
        assert len(bins.shares) == max(distinct, 1)
    else:
        assert len(bins.shares) <= max_bins
    keys = [bins.key_of(float(v)) for v in values]
    counts = bins.counts_of(values)
    order = bins.keys()
    assert list(counts) == order
    assert counts == {k: keys.count(k) for k in order}
    edges = (-math.inf, *bins.edges, math.inf)
    for v, key in zip(values, keys, strict=True):
        if key != MISSING:
            assert edges[int(key)] < v <= edges[int(key) + 1]
    assert sum(bins.shares) + bins.missing == pytest.approx(1.0, abs=1e-5)


def test_bins_survive_the_card():
    for bins in (bins_for(np.random.default_rng(3).normal(size=500)),
                 bins_for(np.array([0.0, 1.0, 1.0, np.nan]))):
        assert Bins.from_dict(bins.to_dict()) == bins
    assert "values" not in bins_for(np.arange(50.0)).to_dict()


def test_malformed_bins_are_refused():
    with pytest.raises(ValueError, match=r"one share more than edges \(2\); got 2 shares"):
        Bins((0.0, 1.0), (0.5, 0.5), 0.0)
    with pytest.raises(ValueError, match=r"strictly increasing; got \[1\.0, 1\.0\]"):
        Bins((1.0, 1.0), (0.3, 0.3, 0.4), 0.0)
    with pytest.raises(ValueError, match="must have edges, shares and missing; got no missing"):
        Bins.from_dict({"edges": [], "shares": [1.0]})


def test_psi_of_identical_distributions_is_zero():
    bins = bins_for(np.arange(1000.0))
    counts = bins.counts_of(np.arange(1000.0))
    assert psi(bins.expected(), counts) == pytest.approx(0.0, abs=1e-9)


def test_psi_of_a_hand_computed_case_either_way_round():
    known = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert known == pytest.approx(0.169459, abs=1e-6)
    assert psi({"0": 0.5, "1": 0.5, MISSING: 0.0}, {"0": 30, "1": 70, MISSING: 0}) == (
        pytest.approx(known))
    assert psi({"0": 0.3, "1": 0.7}, {"0": 50, "1": 50}) == pytest.approx(known)


def test_an_empty_bin_gives_a_large_finite_psi():
    value = psi({"0": 0.5, "1": 0.5}, {"0": 100, "1": 0})
    assert value == pytest.approx(0.5 * math.log(1 / 0.5)
                                  + (1e-4 - 0.5) * math.log(1e-4 / 0.5))
    assert math.isfinite(value) and value > ACT
    # A key only one side knows counts as an empty bin on the other.
    assert psi({"0": 1.0}, {"0": 90, "9": 10}) == pytest.approx(
        (0.9 - 1.0) * math.log(0.9) + (0.1 - 1e-4) * math.log(0.1 / 1e-4))


def test_psi_of_no_rows_is_none():
    assert psi({"0": 1.0, MISSING: 0.0}, {"0": 0, MISSING: 0}) is None
    assert psi({"0": 1.0}, {}) is None
    with pytest.raises(ValueError, match=re.escape("counts must be non-negative; got {'0': -1}")):
        psi({"0": 1.0}, {"0": -1, "1": 2})


def test_a_shifted_population_calls_for_action_and_a_fresh_sample_is_stable():
    rng = np.random.default_rng(7)
    bins = bins_for(rng.normal(size=20_000))
    fresh = psi(bins.expected(), bins.counts_of(rng.normal(size=2000)))
    shifted = psi(bins.expected(), bins.counts_of(rng.normal(loc=0.75, size=2000)))
    assert fresh is not None and shifted is not None
    assert fresh < WATCH and level(fresh) == "stable"
    assert shifted >= ACT and level(shifted) == "act"


def test_levels_at_the_thresholds():
    assert (WATCH, ACT) == (0.1, 0.25)
    assert [level(v) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "stable", "stable", "watch", "watch", "act", "act"]
    assert level(None) == "unknown" and level(math.nan) == "unknown"


def _section():
    rng = np.random.default_rng(5)
    x = np.column_stack([rng.normal(size=400), rng.integers(0, 3, 400).astype(float)])
    x[::10, 0] = np.nan
    pds = rng.uniform(0.001, 0.3, 400)
    return build_drift_reference(x, ["b", "a"], np.round(600 - 100 * pds), pds)


def test_the_card_section_names_the_split_and_reads_back_in_the_cards_order():
    section = _section()
    assert section["split"] == "train" and section["rows"] == 400
    assert list(section["features"]) == ["b", "a"]
    assert section["features"]["b"]["missing"] == 0.1
    reference = DriftReference.from_card({"features": ["b", "a"], "monitoring": section})
    assert reference is not None and list(reference.features) == ["b", "a"]
    assert reference.features["a"].values == (0.0, 1.0, 2.0)
    assert reference.to_dict() == section
    assert DriftReference.from_card({"features": ["b", "a"]}) is None


def test_a_section_for_other_features_is_refused():
    with pytest.raises(ValueError, match=r"card's features; got 1 more \(\['b'\]\) and 1 "
                                         r"fewer \(\['c'\]\)"):
        DriftReference.from_card({"features": ["c", "a"], "monitoring": _section()})


def test_build_drift_reference_checks_its_shapes():
    with pytest.raises(ValueError, match=r"one column per feature \(3\); got shape \(4, 2\)"):
        build_drift_reference(np.zeros((4, 2)), ["a", "b", "c"], np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"one value per row of x \(4\); got 3 and 4"):
        build_drift_reference(np.zeros((4, 2)), ["a", "b"], np.zeros(3), np.zeros(4))
