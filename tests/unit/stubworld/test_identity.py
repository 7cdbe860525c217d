"""National ID numbers (GB 11643)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasources.identity import InvalidNationalId, make_national_id, parse_national_id


def test_a_published_example_is_valid():
    nid = parse_national_id("11010519491231002X")
    assert nid.birth_date == date(1949, 12, 31)
    assert nid.region == "110105"


@given(st.dates(min_value=date(1930, 1, 1), max_value=date(2008, 1, 1)),
       st.integers(0, 999), st.sampled_from(["110101", "440305", "510107"]))
def test_made_ids_parse_back(born, seq, region):
    nid = make_national_id(region, born, seq)
    parsed = parse_national_id(nid.lower())
    assert (parsed.birth_date, parsed.region, int(parsed.sequence)) == (born, region, seq)


@pytest.mark.parametrize(("value", "message"), [
    ("11010519491231002", "17 digits"),
    ("110105194912310021", "check digit"),
    ("99010519491231002X", "region"),
    ("110105194902300029", "not a date"),
    ("110105230001010011", "not plausible"),
    (12345, "must be a string"),
])
def test_bad_ids_are_refused_with_a_reason(value, message):
    with pytest.raises(InvalidNationalId, match=message):
        parse_national_id(value, today=date(2026, 11, 1))


def test_age_counts_whole_years():
    nid = parse_national_id(make_national_id("110101", date(1990, 6, 15), 1))
    assert nid.age_on(date(2026, 6, 14)) == 35
    assert nid.age_on(date(2026, 6, 15)) == 36
