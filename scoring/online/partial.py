"""Partial approvals: a line granted below the amount asked, and which bound set it.

The policy's line is the smallest of the verified income times the grade's multiplier, what
the debt-service bound leaves, and the product's largest line
(``scoring.online.policy.LINE_BOUNDS``).
When it is below the amount the applicant asked for, the answer, the notice and the console
say so, with the bound in plain words and a code of its own.
"""

from __future__ import annotations

from typing import Any

from scoring.online.policy import Policy

# Each bound's code and texts; the grade's multiple, {dsr} and {max_line} come from the
# policy.
LINE_BOUND_REASONS: dict[str, dict[str, str]] = {
    "income_multiple": {
        "code": "L01",
        "zh": "授信额度按您核实的月收入乘以您信用等级对应的倍数{multiple_zh}确定",
        "en": "The line is your verified monthly income times your grade's multiple"
              "{multiple_en}"},
    "debt_service": {
        "code": "L02",
        "zh": "更高额度的月还款加上您现有债务的月供，将超过您核实月收入的{dsr:.0%}",
        "en": "The monthly repayment of a larger line, with your existing debts, would take "
              "more than {dsr:.0%} of your verified monthly income"},
    "product_max": {
        "code": "L03",
        "zh": "本产品的最高授信额度为¥{max_line:,.0f}",
        "en": "This product's largest line is ¥{max_line:,.0f}"},
}


def bound_texts(policy: Policy, bound: str, grade: str | None = None) -> dict[str, str]:
    """Return the code and texts of a line bound under ``policy`` (with ``grade``'s multiple
    when a grade is given)."""
    entry = LINE_BOUND_REASONS[bound]
    names = list(policy.grade_names)
    values: dict[str, Any] = {"dsr": policy.max_dsr, "max_line": policy.max_line,
                              "multiple_zh": "", "multiple_en": ""}
    if grade in names:
        multiple = float(policy.grade_multiplier[names.index(grade)])
        values.update(multiple_zh=f"（{multiple:g}倍）", multiple_en=f" ({multiple:g}×)")
    return {"code": entry["code"], "text_zh": entry["zh"].format(**values),
            "text_en": entry["en"].format(**values)}


def partial_approval(policy: Policy, *, outcome: str, credit_limit: float, amount: float,
                     bound: str | None, grade: str) -> dict[str, Any] | None:
    """Return what a partial approval tells the applicant, or None when it is none.

    An approval is partial when its line is below the amount asked for; ``bound`` is the one
    that set the line.
    """
    if outcome != "approved" or credit_limit >= amount or bound is None:
        return None
    return {"requested_amount": float(amount), "credit_limit": float(credit_limit),
            "bound": bound, **bound_texts(policy, bound, grade)}
