"""Unknown is not absent: features a missing source leaves unknown, rules on evidence only."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.online.policy import load_policy
from scoring.online.spec import load_spec
from scoring.online.unknown import unknown_features
from tests.unit.scoring.test_policy import good_facts

POLICY = load_policy()
SPEC = load_spec()
NAN = float("nan")


def evaluate(unknown: tuple[str, ...], pd: float = 0.005, **changes):
    result = POLICY.evaluate(good_facts(**changes), np.array([pd]), unknown)
    return result.outcome[0], result.rules_fired[0], result.undetermined[0]


def test_every_source_answering_leaves_nothing_unknown():
    known = unknown_features(SPEC, ())
    assert (known.scopes, known.unknown, known.partial) == ((), (), ())


@pytest.mark.parametrize("scope", ["provident_fund", "social_security", "income_tax"])
def test_an_income_source_unknown_makes_its_group_unknown_and_income_partial(scope):
    result = unknown_features(SPEC, (scope,))
    own = {f.name for f in SPEC.features if f.group == scope}
    assert own <= set(result.unknown)
    assert set(result.partial) == {"income_verified_monthly", "income_sources",
                                   "income_dispersion", "debt_to_income", "requested_to_income"}
    # Employer agreement compares provident fund with social security: it needs both.
    assert ("employer_agreement" in result.unknown) == (scope != "income_tax")
    assert not set(result.unknown) & set(result.partial)


def test_without_the_credit_report_debt_to_income_is_unknown():
    result = unknown_features(SPEC, ("credit_report",))
    assert "debt_to_income" in result.unknown and "cr_overdue_now" in result.unknown


def test_every_income_source_unknown_leaves_no_income_feature():
    result = unknown_features(SPEC, ("provident_fund", "social_security", "income_tax"))
    assert {"income_verified_monthly", "income_sources", "requested_to_income"} <= set(
        result.unknown)
    assert result.partial == ()


def test_no_contribution_history_received_with_provident_fund_unknown_is_undetermined():
    outcome, fired, undetermined = evaluate(
        ("provident_fund",), pf_has_account=NAN, pf_months_continuous=NAN,
        ss_months_continuous=3.0)
    assert "contribution_history" not in fired
    assert "contribution_history" in undetermined
    assert outcome == "deferred"


def test_social_security_showing_six_months_decides_contribution_history_alone():
    outcome, fired, undetermined = evaluate(("provident_fund",), pf_months_continuous=NAN,
                                            ss_months_continuous=24.0)
    assert (outcome, fired, undetermined) == ("approved", [], [])


def test_contribution_history_fires_on_both_answers():
    outcome, fired, undetermined = evaluate(("income_tax",), pf_months_continuous=0.0,
                                            ss_months_continuous=2.0)
    assert outcome == "declined" and "contribution_history" in fired
    assert undetermined == []


def test_too_few_income_sources_is_undetermined_while_the_missing_one_could_count():
    outcome, fired, undetermined = evaluate(("income_tax",), income_sources=1.0)
    assert (outcome, fired, undetermined) == ("deferred", [], ["income_sources"])


def test_too_few_income_sources_fires_when_no_missing_source_could_make_up_the_count():
    outcome, fired, _ = evaluate(("income_tax",), income_sources=0.0)
    assert outcome == "declined" and fired == ["income_sources"]


def test_evidence_received_still_declines_during_an_outage():
    outcome, fired, _ = evaluate(("social_security",), court_adverse_listing=1.0)
    assert outcome == "declined" and fired == ["court_listing"]


@pytest.mark.parametrize(("scope", "rule"), [("credit_report", "overdue_now"),
                                             ("credit_report", "bad_debt"),
                                             ("court_records", "court_listing")])
def test_a_rule_on_a_source_that_did_not_answer_never_fires(scope, rule):
    outcome, fired, undetermined = evaluate((scope,))
    assert rule not in fired and rule in undetermined
    assert outcome == "deferred"


def test_a_score_above_the_cutoff_defers_while_a_source_is_unknown():
    assert evaluate((), pd=0.2)[0] == "declined"
    outcome, fired, undetermined = evaluate(("income_tax",), pd=0.2)
    assert (outcome, fired, undetermined) == ("deferred", [], ["score"])


def test_a_line_below_the_minimum_defers_while_income_is_partly_unknown():
    outcome, fired, undetermined = evaluate(("provident_fund",),
                                            income_verified_monthly=400.0)
    assert outcome == "deferred" and undetermined == ["line_below_minimum"] and fired == []


def test_an_approval_with_a_source_unknown_takes_the_line_from_the_income_received():
    full = POLICY.evaluate(good_facts(), np.array([0.005]))
    partial = POLICY.evaluate(good_facts(income_verified_monthly=6_000.0), np.array([0.005]),
                              ("income_tax",))
    assert partial.outcome[0] == "approved"
    assert 0 < partial.credit_limit[0] < full.credit_limit[0]
