"""What set a credit line, and the terms a risk officer may choose on review."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.online.policy import REGULATORY_MAX_APR, load_policy
from scoring.online.review_terms import TermsRefused, offered_terms, terms_by_person
from tests.unit.scoring.test_policy import good_facts

POLICY = load_policy()


def bound(pd: float = 0.005, **changes) -> tuple[float, str]:
    result = POLICY.evaluate(good_facts(**changes), np.array([pd]))
    return float(result.credit_limit[0]), str(result.line_bound[0])


def test_a_long_term_line_is_set_by_the_income_multiple():
    # 10,000 × 8 (grade A) = 80,000, under the debt-service bound over 36 months.
    assert bound(term_months=36.0) == (80_000, "income_multiple")


def test_a_short_term_line_is_set_by_the_debt_service_bound():
    assert bound(term_months=12.0) == (46_000, "debt_service")


def test_a_high_income_line_is_set_by_the_product_maximum():
    assert bound(term_months=36.0, income_verified_monthly=200_000.0) == (200_000,
                                                                          "product_max")


def test_existing_debts_move_the_bound_to_debt_service():
    # The same 36 months as the income-multiple case, with half the income already owed.
    line, which = bound(term_months=36.0, debt_to_income=0.45)
    assert which == "debt_service" and line < 80_000


def test_every_row_of_a_batch_names_its_bound():
    facts = good_facts(term_months=36.0)
    facts = {k: np.repeat(v, 3) for k, v in facts.items()}
    facts["term_months"] = np.array([36.0, 12.0, 36.0])
    facts["income_verified_monthly"] = np.array([10_000.0, 10_000.0, 200_000.0])
    result = POLICY.evaluate(facts, np.full(3, 0.005))
    assert list(result.line_bound) == ["income_multiple", "debt_service", "product_max"]


def test_a_person_may_choose_any_approving_grade_rate_and_a_line_in_range():
    terms = terms_by_person(POLICY, 50_000, 0.126)
    assert terms == {"grade": "C", "credit_limit": 50_000.0, "annual_rate": 0.126,
                     "terms_months": list(POLICY.terms_months)}
    offered = offered_terms(POLICY)
    assert [r["grade"] for r in offered["rates"]] == ["A", "B", "C", "D", "E"]
    assert all(r["annual_rate"] <= REGULATORY_MAX_APR for r in offered["rates"])
    assert offered["credit_limit"] == {"min": 3000.0, "max": 200_000.0, "step": 1000.0}


@pytest.mark.parametrize(("line", "rate", "field"), [
    (50_000, 0.25, "annual_rate"),        # above the regulatory cap
    (50_000, 0.0, "annual_rate"),         # grade F's rate: a grade that declines
    (50_000, 0.1, "annual_rate"),         # no grade's rate
    (2_000, 0.126, "credit_limit"),       # below the product minimum
    (200_001_000, 0.126, "credit_limit"),  # above the cap
    (50_500, 0.126, "credit_limit"),      # not a whole step
])
def test_terms_outside_the_policy_are_refused_naming_the_term(line, rate, field):
    with pytest.raises(TermsRefused) as caught:
        terms_by_person(POLICY, line, rate)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_an_income_nobody_verified_supports_no_line():
    # Without a verified income both bounds are unknown; the cap alone must not set a line.
    line, _ = bound(term_months=36.0, income_verified_monthly=float("nan"))
    assert line == 0
    facts = {k: v[0] for k, v in good_facts(income_verified_monthly=float("nan")).items()}
    terms = POLICY.approval_by_person(facts, "C")
    assert terms["credit_limit"] == POLICY.min_line
