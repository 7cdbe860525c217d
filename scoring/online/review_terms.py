"""Terms a risk officer sets on review: a line and a rate of their choosing, within the policy.

A person may overturn a decline into an approval or change a granted line, on terms the
policy's grades offer (a rate is one of the approving grades' rates, which also names the
grade) and within the product's line range and the regulatory caps. Anything else is refused
with a message naming the term, never silently moved into range.
"""

from __future__ import annotations

import math
from typing import Any

from scoring.online.policy import REGULATORY_MAX_APR, REGULATORY_MAX_LINE, Policy


class TermsRefused(ValueError):
    """Terms outside what the policy allows; ``field`` names the term at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def offered_terms(policy: Policy) -> dict[str, Any]:
    """Return what a person may choose: each approving grade's rate, and the line range."""
    low, high = policy.amount_range
    return {"rates": [{"grade": str(policy.grade_names[i]),
                       "annual_rate": min(float(policy.grade_rate[i]), REGULATORY_MAX_APR)}
                      for i in policy.approving_grades()],
            "credit_limit": {"min": low, "max": min(high, REGULATORY_MAX_LINE),
                             "step": policy.round_to}}


def terms_by_person(policy: Policy, credit_limit: float, annual_rate: float) -> dict[str, Any]:
    """Return the approval terms a person chose, or raise TermsRefused naming the term."""
    offered = offered_terms(policy)
    rates = offered["rates"]
    chosen = [r for r in rates if math.isclose(r["annual_rate"], annual_rate, abs_tol=1e-9)]
    if not chosen:
        listed = ", ".join(f"{r['annual_rate']:.2%} (grade {r['grade']})" for r in rates)
        raise TermsRefused("annual_rate", f"annual_rate must be one of this policy's approving "
                                          f"rates: {listed}; got {annual_rate:g}")
    line = offered["credit_limit"]
    steps = credit_limit / line["step"]
    if not (line["min"] <= credit_limit <= line["max"]) or not math.isclose(
            steps, round(steps), abs_tol=1e-9):
        raise TermsRefused("credit_limit",
                           f"credit_limit must be from {line['min']:,.0f} to {line['max']:,.0f} "
                           f"in steps of {line['step']:,.0f}; got {credit_limit:,.2f}")
    return {"grade": chosen[0]["grade"], "credit_limit": float(credit_limit),
            "annual_rate": chosen[0]["annual_rate"], "terms_months": list(policy.terms_months)}
