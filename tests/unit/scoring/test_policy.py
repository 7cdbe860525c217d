"""Policy: each knock-out, the PD cut-off, the credit line and the regulatory caps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.online.policy import (
    REGULATORY_MAX_APR,
    REGULATORY_MAX_LINE,
    Policy,
    PolicyError,
    load_policy,
)
from scoring.online.spec import load_spec

POLICY = load_policy()
SPEC = load_spec()


def good_facts(**changes) -> dict:
    facts = {name: 0.0 for name in SPEC.names}
    facts.update({
        "pf_has_account": 1.0, "pf_months_continuous": 36.0, "ss_enrolled": 1.0,
        "ss_months_continuous": 36.0, "income_verified_monthly": 10_000.0,
        "income_sources": 3.0, "debt_to_income": 0.1, "term_months": 12.0,
        "age": 35.0, "purpose": "travel",
    })
    facts.update(changes)
    return {k: np.array([v], dtype=object if k == "purpose" else float) for k, v in facts.items()}


def decide(pd: float = 0.005, **changes):
    result = POLICY.evaluate(good_facts(**changes), np.array([pd]))
    return (result.outcome[0], result.credit_limit[0], result.annual_rate[0],
            result.rules_fired[0], result.grade[0])


def test_a_good_applicant_is_approved_with_grade_a_terms():
    outcome, line, rate, fired, grade = decide(term_months=36.0)
    assert (outcome, grade, fired) == ("approved", "A", [])
    assert rate == 0.072
    # 10,000 × 8 = 80,000 is under the debt-service bound over 36 months at 7.2%.
    assert line == 80_000


def test_a_shorter_term_lowers_the_line_through_the_debt_service_bound():
    # 12 months: (50% × 10,000 − 1,000) / annuity factor ≈ 46,187, rounded down.
    assert decide(term_months=12.0)[1] == 46_000


@pytest.mark.parametrize(("change", "rule"), [
    ({"court_adverse_listing": 1.0}, "court_listing"),
    ({"cr_overdue_now": 1.0}, "overdue_now"),
    ({"cr_bad_debt": 1.0}, "bad_debt"),
    ({"age": 21.0}, "age"),
    ({"age": 56.0}, "age"),
    ({"purpose": "securities"}, "purpose"),
    ({"purpose": "property"}, "purpose"),
    ({"purpose": "business"}, "purpose"),
    ({"pf_months_continuous": 5.0, "ss_months_continuous": 5.0}, "contribution_history"),
    ({"pf_months_continuous": np.nan, "ss_months_continuous": 3.0}, "contribution_history"),
    ({"income_sources": 1.0}, "income_sources"),
    ({"income_sources": np.nan}, "income_sources"),
    ({"term_months": 9.0}, "term"),
])
def test_each_knockout_declines_and_names_its_rule(change, rule):
    outcome, line, rate, fired, _ = decide(**change)
    assert outcome == "declined"
    assert fired == [rule]
    assert line == 0 and np.isnan(rate)


def test_six_months_of_either_contribution_is_enough():
    assert decide(pf_months_continuous=0.0, ss_months_continuous=6.0)[0] == "approved"
    assert decide(pf_months_continuous=6.0, ss_months_continuous=0.0)[0] == "approved"


def test_ages_at_the_bounds_are_eligible():
    assert decide(age=22.0)[0] == "approved"
    assert decide(age=55.0)[0] == "approved"


def test_pd_above_the_cutoff_is_a_score_decline():
    outcome, _, _, fired, grade = decide(pd=POLICY.pd_cutoff + 1e-6)
    assert outcome == "declined" and fired == ["score"] and grade == "F"
    assert decide(pd=POLICY.pd_cutoff)[0] == "approved"


def test_grades_follow_the_pd_bands():
    grades = [decide(pd=p)[4] for p in (0.001, 0.015, 0.03, 0.05, 0.07)]
    assert grades == ["A", "B", "C", "D", "E"]


def test_line_is_bounded_by_the_debt_service_ratio_and_rounded_down():
    # Existing debt takes 45% of income: only 5% of 10,000 = 500 a month is left.
    _, line, rate, _, _ = decide(debt_to_income=0.45, term_months=12.0)
    monthly = rate / 12
    factor = monthly / (1 - (1 + monthly) ** -12)
    assert line == np.floor(500 / factor / 1000) * 1000
    assert line % 1000 == 0


def test_a_line_below_the_minimum_declines():
    outcome, line, _, fired, _ = decide(debt_to_income=0.499)
    assert outcome == "declined" and fired == ["line_below_minimum"] and line == 0


def test_the_regulatory_line_cap_holds_for_high_incomes():
    _, line, _, _, _ = decide(income_verified_monthly=1_000_000.0, term_months=36.0)
    assert line == REGULATORY_MAX_LINE


@settings(max_examples=300, deadline=None)
@given(
    pd=st.floats(min_value=0, max_value=1),
    income=st.one_of(st.floats(min_value=0, max_value=1e9), st.just(np.nan)),
    dti=st.one_of(st.floats(min_value=0, max_value=100), st.just(np.nan)),
    term=st.sampled_from([1.0, 3.0, 6.0, 12.0, 24.0, 36.0, 48.0, 360.0]),
    sources=st.sampled_from([0.0, 1.0, 2.0, 3.0, np.nan]),
)
def test_no_approval_ever_exceeds_the_caps(pd, income, dti, term, sources):
    result = POLICY.evaluate(good_facts(income_verified_monthly=income, debt_to_income=dti,
                                        term_months=term, income_sources=sources),
                             np.array([pd]))
    if result.outcome[0] == "approved":
        assert 0 < result.credit_limit[0] <= REGULATORY_MAX_LINE
        assert 0 < result.annual_rate[0] <= REGULATORY_MAX_APR
        assert result.credit_limit[0] % 1000 == 0
    else:
        assert result.credit_limit[0] == 0


def _doc() -> dict:
    from scoring.online.policy import POLICY_DIR

    return json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))


def test_a_policy_cannot_raise_the_line_cap():
    doc = _doc()
    doc["limit"]["max_line"] = 300_000
    with pytest.raises(PolicyError, match="max_line must be at most"):
        Policy(doc)


def test_a_policy_cannot_raise_the_rate_cap():
    doc = _doc()
    doc["grades"][0]["annual_rate"] = 0.30
    with pytest.raises(PolicyError, match="annual_rate must be at most"):
        Policy(doc)


def test_policy_version_and_digest_are_stable():
    assert POLICY.version == "2026.11"
    assert Policy(_doc()).digest == POLICY.digest
    changed = _doc()
    changed["pd_cutoff"] = 0.07
    assert Policy(changed).digest != POLICY.digest


def test_an_unknown_policy_is_refused_with_the_known_versions():
    with pytest.raises(PolicyError, match=r"2026\.11"):
        load_policy("no-such-policy")


def test_each_load_reads_the_policy_file_afresh(tmp_path):
    # No process-wide cache: whoever loads a policy keeps it, and a later load sees the file
    # as it is now.
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(_doc()), encoding="utf-8")
    first = load_policy(str(path))
    changed = _doc()
    changed["pd_cutoff"] = 0.07
    path.write_text(json.dumps(changed), encoding="utf-8")
    second = load_policy(str(path))
    assert (first.pd_cutoff, second.pd_cutoff) == (POLICY.pd_cutoff, 0.07)
    assert first.digest == POLICY.digest != second.digest
