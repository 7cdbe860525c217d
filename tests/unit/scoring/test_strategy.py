"""Strategies and plans: parsing, validation, and the deterministic draw of the challenger."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.governance.strategy import (
    CHALLENGER,
    CHAMPION,
    SHADOW,
    Strategy,
    StrategyError,
    StrategyPlan,
    challenger_draw,
)

CHAMP = Strategy("v1", "2026.11")
STRICT = Strategy("v1", "2026.11-strict")
WIDE = Strategy("v1", "2026.11-wide")


def subjects(n: int) -> list[str]:
    """Pseudonymised subjects as the service makes them: hex digests."""
    return [hashlib.sha256(f"applicant {i}".encode()).hexdigest() for i in range(n)]


def test_a_strategy_is_read_from_model_slash_policy():
    assert Strategy.parse("v1/2026.11") == CHAMP
    assert Strategy.parse(" v1/2026.11-strict ").name == "v1/2026.11-strict"


@pytest.mark.parametrize("text", ["v1", "/2026.11", "v1/", "", None, 3])
def test_a_malformed_strategy_names_its_field(text):
    with pytest.raises(StrategyError, match="MODEL/POLICY") as caught:
        Strategy.parse(text, "shadows.2")
    assert caught.value.field == "shadows.2"


@pytest.mark.parametrize("text", [
    "v1//etc/passwd", "v1/../../etc/passwd", "../v1/2026.11", "v1/./2026.11",
    "v1/policies/2026.11", "v1/.2026.11", "v1/C:\\x.json", "v1/2026.11\x00", "v1/2026 11",
    "v1/" + "9" * 101])
def test_a_strategy_names_two_versions_never_a_path(text):
    with pytest.raises(StrategyError, match="never a path") as caught:
        Strategy.parse(text)
    assert caught.value.field == "strategy"


def test_the_same_subject_always_draws_the_same_place_in_zero_to_one():
    for subject in subjects(200):
        place = challenger_draw(subject)
        assert 0.0 <= place < 1.0
        assert challenger_draw(subject) == place


def test_places_are_uniform_over_applicants():
    places = [challenger_draw(s) for s in subjects(20_000)]
    # Each tenth holds 2,000 ± 4.5 standard deviations (sd = sqrt(20000 * .1 * .9) ≈ 42).
    counts = [sum(k / 10 <= p < (k + 1) / 10 for p in places) for k in range(10)]
    assert all(abs(c - 2_000) < 190 for c in counts), counts


def test_a_plan_gives_the_challenger_its_share_and_the_champion_the_rest():
    plan = StrategyPlan(CHAMP, STRICT, 0.2, (WIDE,))
    roles = [plan.deciding(s) for s in subjects(5_000)]
    challenged = sum(role == CHALLENGER for role, _ in roles)
    assert 1_000 - 130 < challenged < 1_000 + 130
    assert {s for role, s in roles if role == CHALLENGER} == {STRICT}
    assert {s for role, s in roles if role == CHAMPION} == {CHAMP}


@given(st.floats(0, 1), st.floats(0, 1))
def test_raising_the_share_only_moves_applicants_to_the_challenger(a, b):
    low, high = sorted((a, b))
    before = StrategyPlan(CHAMP, STRICT, low)
    after = StrategyPlan(CHAMP, STRICT, high)
    for subject in subjects(300):
        if before.deciding(subject)[0] == CHALLENGER:
            assert after.deciding(subject)[0] == CHALLENGER


def test_shadows_never_decide_and_the_members_list_every_role():
    plan = StrategyPlan(CHAMP, STRICT, 1.0, (WIDE,))
    assert all(plan.deciding(s) == (CHALLENGER, STRICT) for s in subjects(100))
    assert plan.members() == [(CHAMPION, CHAMP), (CHALLENGER, STRICT), (SHADOW, WIDE)]
    assert StrategyPlan(CHAMP).members() == [(CHAMPION, CHAMP)]


def test_a_plan_round_trips_through_its_dict():
    plan = StrategyPlan(CHAMP, STRICT, 0.25, (WIDE,))
    doc = plan.to_dict()
    assert doc == {"champion": "v1/2026.11",
                   "challenger": {"strategy": "v1/2026.11-strict", "share": 0.25},
                   "shadows": ["v1/2026.11-wide"]}
    assert StrategyPlan.from_dict(doc) == plan


@pytest.mark.parametrize(("doc", "field"), [
    ({"champion": "v1/2026.11", "challenger": {"strategy": "v1/2026.11", "share": 0.1}},
     "challenger.strategy"),
    ({"champion": "v1/2026.11", "shadows": ["v1/2026.11-wide", "v1/2026.11-wide"]},
     "shadows.1"),
    ({"champion": "v1/2026.11", "challenger": {"strategy": "v1/x", "share": 1.5}},
     "challenger.share"),
    ({"champion": "v1/2026.11", "challenger": "v1/x"}, "challenger"),
    ({"champion": "v1/2026.11", "shadows": "v1/x"}, "shadows"),
    ({"champion": "v1"}, "champion"),
    ({}, "champion"),
])
def test_a_bad_plan_names_the_field_at_fault(doc, field):
    with pytest.raises(StrategyError) as caught:
        StrategyPlan.from_dict(doc)
    assert caught.value.field == field
