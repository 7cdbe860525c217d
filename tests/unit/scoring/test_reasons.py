"""Reason codes: one slot per group, ranked by the group's push, rules first, at most four;
an approval's codes are the favourable ones, and a reference ranks when there is one."""

from __future__ import annotations

import numpy as np

from scoring.online.policy import load_policy
from scoring.online.reasons import ReasonCoder
from scoring.online.spec import load_spec

SPEC = load_spec()
POLICY = load_policy()
CODER = ReasonCoder(SPEC, SPEC.names)


def contribs(**values: float) -> np.ndarray:
    row = np.zeros(len(SPEC.names))
    for name, value in values.items():
        row[SPEC.names.index(name)] = value
    return row[None, :]


def reasons(c, approved=False, rules=(), ranked_by=None):
    return CODER.reasons(c, np.array([approved]), [list(rules)], POLICY,
                         ranked_by=ranked_by)[0]


def test_two_features_of_one_group_take_one_slot():
    r = reasons(contribs(cr_inquiries_3m=0.5, cr_inquiries_6m=0.4, income_dispersion=0.3))
    assert [x.code for x in r] == ["CR07", "IN03"]
    assert r[0].group == "credit_report"


def test_groups_are_ranked_by_their_total_push():
    # Credit report: two small pushes (0.25 + 0.25) outrank one income push of 0.4.
    r = reasons(contribs(cr_inquiries_3m=0.25, cr_loans_open=0.25, income_dispersion=0.4))
    assert [x.group for x in r] == ["credit_report", "income"]


def test_a_group_that_lowered_the_risk_overall_is_not_a_decline_reason():
    r = reasons(contribs(cr_inquiries_3m=0.2, cr_overdue_count_24m=-0.5, income_dispersion=0.1))
    assert [x.code for x in r] == ["IN03"]


def test_at_most_four_reasons():
    r = reasons(contribs(pf_has_account=0.6, ss_enrolled=0.5, tax_has_record=0.4,
                         cr_inquiries_3m=0.3, court_lawsuits_5y=0.2, income_dispersion=0.1))
    assert [x.code for x in r] == ["PF01", "SS01", "TX01", "CR07"]


def test_ties_are_broken_by_the_spec_group_order():
    r = reasons(contribs(court_lawsuits_5y=0.3, pf_withdrawals_12m=0.3))
    assert [x.group for x in r] == ["provident_fund", "court_records"]
    again = reasons(contribs(pf_withdrawals_12m=0.3, court_lawsuits_5y=0.3))
    assert [x.code for x in again] == [x.code for x in r]


def test_a_knockout_rule_comes_first_and_its_group_is_not_repeated():
    r = reasons(contribs(court_enforcement_open=0.9, cr_inquiries_3m=0.3),
                rules=["court_listing"])
    assert [x.code for x in r] == ["K01", "CR07"]
    assert r[0].source == "rule" and "失信" in r[0].text_zh


def test_a_score_decline_is_explained_by_the_model_alone():
    r = reasons(contribs(cr_card_utilization=0.8), rules=["score"])
    assert [x.code for x in r] == ["CR02"]
    assert r[0].text_en == SPEC.by_name("cr_card_utilization").adverse.en


def test_approvals_name_the_factors_that_lowered_the_risk():
    r = reasons(contribs(income_verified_monthly=-0.6, cr_overdue_count_24m=-0.2,
                         cr_inquiries_3m=0.4), approved=True)
    favourable = SPEC.by_name("income_verified_monthly").favourable
    assert [x.code for x in r] == ["IN01F"] == [favourable.code]
    assert r[0].text_zh == favourable.zh


def test_an_approval_cites_no_feature_whose_favourable_side_is_no_reason():
    # No late payments (no favourable text) lowered the risk most; the credit report's
    # slot goes to what may be cited, and its push alone ranks the group.
    r = reasons(contribs(cr_overdue_count_24m=-0.9, cr_inquiries_3m=-0.1,
                         income_verified_monthly=-0.2), approved=True)
    assert [x.code for x in r] == ["IN01F", "CR07F"]
    # Nothing citable lowered the risk: no model reason at all.
    assert reasons(contribs(court_lawsuits_5y=-0.5, cr_bad_debt=-0.4), approved=True) == []


def test_a_reference_ranks_the_reasons_and_each_carries_both_contributions():
    exact = contribs(cr_card_utilization=0.9, debt_to_income=0.1)
    # Against approved applicants the debt burden stands out, the utilisation not at all.
    against = contribs(cr_card_utilization=-0.2, debt_to_income=0.6, cr_inquiries_3m=0.3)
    r = reasons(exact, rules=["score"], ranked_by=against)
    assert [x.code for x in r] == ["IN05", "CR07"]
    assert (r[0].contribution, r[0].reference_contribution) == (0.1, 0.6)
    assert (r[1].contribution, r[1].reference_contribution) == (0.0, 0.3)
    assert [x.code for x in reasons(exact, rules=["score"])] == ["CR02", "IN05"]
    assert reasons(exact, rules=["score"])[0].reference_contribution is None


def test_an_approval_cites_only_where_the_applicant_is_better_than_the_reference():
    exact = contribs(cr_card_utilization=-0.8, income_verified_monthly=-0.3)
    against = contribs(cr_card_utilization=0.4, income_verified_monthly=-0.1)
    r = reasons(exact, approved=True, ranked_by=against)
    assert [(x.code, x.reference_contribution) for x in r] == [("IN01F", -0.1)]
