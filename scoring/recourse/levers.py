"""The levers of recourse: what an applicant can change, each a consistent joint change.

A lever offers options, ordered from the least to the most effort. An option sets some model
features (``columns`` ← ``values``), may cut the monthly debt payment (``payment_cut``, from
which the search recomputes ``debt_to_income``), may choose a term or a purpose, and carries
the plain-language change it stands for.

Assumption: a card's minimum repayment is ``CARD_MINIMUM_SHARE`` (10%) of its balance a month,
as Chinese card issuers commonly ask; the card part of the monthly debt payment is that share
of the balances, never more than the whole payment, and the rest is spread evenly over the
open loans.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.online.policy import PURPOSES, Policy

CARD_MINIMUM_SHARE = 0.10
# Card utilisation targets are whole multiples of this share.
UTILISATION_STEP = 0.05
# The smaller amounts offered, as fractions of the way from the amount asked to the least.
AMOUNT_FRACTIONS = np.linspace(0.05, 1.0, 20)

# The model features each lever changes. Nothing else is ever changed: not age, court
# listings, bad debt, overdue history, inquiries, credit history, contributions or income.
LEVER_FEATURES: dict[str, tuple[str, ...]] = {
    "overdue_now": ("cr_overdue_now",),
    "purpose": (),
    "term": ("term_months",),
    "card_balances": ("cr_card_utilization", "debt_to_income"),
    "loans": ("cr_loans_open", "debt_to_income"),
    "amount": ("requested_to_income",),
    "court_enforcement": ("court_enforcement_open", "court_enforcement_amount"),
}
CHANGEABLE = frozenset(name for names in LEVER_FEATURES.values() for name in names)


@dataclass(frozen=True, slots=True)
class Change:
    """One lever's change in a suggestion: the feature or fact it moves, and its texts."""

    lever: str
    kind: str            # "feature" (a model feature) or "fact" (an application fact)
    name: str
    before: Any
    after: Any
    text_zh: str
    text_en: str

    def to_dict(self) -> dict[str, Any]:
        return {"lever": self.lever, self.kind: self.name, "from": self.before,
                "to": self.after, "text_zh": self.text_zh, "text_en": self.text_en}


@dataclass(frozen=True, slots=True)
class Lever:
    """A lever's options for one application, in order of effort (0 none … 1 all of it)."""

    name: str
    columns: tuple[int, ...]
    values: np.ndarray           # (k, len(columns))
    payment_cut: np.ndarray      # (k,) CNY a month
    effort: np.ndarray           # (k,)
    changes: tuple[Change, ...]  # (k,)
    term: np.ndarray | None = None
    purpose: str | None = None

    def grid(self, points: int | None) -> np.ndarray:
        """Return the indices of at most ``points`` options, evenly spread, the last kept."""
        k = len(self.changes)
        if points is None or k <= points:
            return np.arange(k)
        return np.unique(np.round(np.linspace(0, k - 1, points)).astype(np.intp))


@dataclass(frozen=True, slots=True)
class Application:
    """What the levers read of one application: its features (spec order) and facts."""

    x: np.ndarray
    column: Mapping[str, int]
    amount: float
    term: float
    purpose: str

    def __getitem__(self, name: str) -> float:
        return float(self.x[self.column[name]])

    @property
    def income(self) -> float:
        return self["income_verified_monthly"]

    @property
    def payment(self) -> float:
        """The monthly debt payment (0 when unknown: then nothing can be cut from it)."""
        value = self["debt_to_income"] * self.income
        return value if math.isfinite(value) else 0.0

    @property
    def card_minimum(self) -> float:
        """The card part of the monthly payment: the minimum repayment, within the payment."""
        balance = self["cr_card_utilization"] * self["cr_card_limit_total"]
        return min(CARD_MINIMUM_SHARE * balance, self.payment) if balance > 0 else 0.0


def _lever(name: str, app: Application, values: Any, *, effort: Any, changes: list[Change],
           cut: Any = 0.0, term: Any = None, purpose: str | None = None) -> Lever:
    columns = tuple(app.column[n] for n in LEVER_FEATURES[name] if n != "debt_to_income")
    k = len(changes)
    return Lever(name, columns, np.asarray(values, dtype=float).reshape(k, len(columns)),
                 np.broadcast_to(np.asarray(cut, dtype=float), (k,)),
                 np.asarray(effort, dtype=float).reshape(k), tuple(changes),
                 None if term is None else np.asarray(term, dtype=float), purpose)


def yuan(value: float) -> tuple[str, str]:
    """Return an amount of money as written in Chinese and in English."""
    return f"{value:,.0f}元", f"¥{value:,.0f}"


def card_balances(app: Application, low: float) -> Lever | None:
    """Repay card balances: utilisation down to a multiple of 5%, the payment with it."""
    u, limit = app["cr_card_utilization"], app["cr_card_limit_total"]
    low = max(low, 0.0)
    if not (u > low and limit > 0):
        return None
    top = math.ceil(round(u / UTILISATION_STEP, 9)) - 1
    targets = UTILISATION_STEP * np.arange(top, -1, -1)
    targets = np.round(targets[targets >= low - 1e-12], 4)
    if not len(targets):
        return None
    repaid = (u - targets) * limit
    cut = np.minimum(CARD_MINIMUM_SHARE * repaid, app.card_minimum)
    changes = []
    for target, amount in zip(targets.tolist(), repaid.tolist(), strict=True):
        zh, en = yuan(math.ceil(amount / 100) * 100)
        if target == 0:
            text_zh, text_en = (f"全额还清信用卡欠款（约{zh}）",
                                f"Repay your card balances in full (about {en})")
        else:
            text_zh = (f"将信用卡使用率从{u:.0%}降至{target:.0%}或以下"
                       f"（约偿还信用卡欠款{zh}）")
            text_en = (f"Lower card utilisation from {u:.0%} to {target:.0%} or less "
                       f"(repay about {en} of card balances)")
        changes.append(Change("card_balances", "feature", "cr_card_utilization", u, target,
                              text_zh, text_en))
    return _lever("card_balances", app, targets, effort=(u - targets) / (u - low),
                  changes=changes, cut=cut)


def loans(app: Application, low: float) -> Lever | None:
    """Pay off and close k of the open loans: each takes its share of the loan payments."""
    n = app["cr_loans_open"]
    low = max(math.ceil(low), 0)
    if not n > low:
        return None
    n = int(n)
    k = np.arange(1, n - low + 1)
    per_loan = max(app.payment - app.card_minimum, 0.0) / n
    changes = []
    for closed in k.tolist():
        if n == 1:
            text_zh, text_en = "结清并关闭您的1笔未结清贷款", "Pay off and close your open loan"
        elif closed == n:
            text_zh = f"结清并关闭全部{n}笔未结清贷款"
            text_en = f"Pay off and close all {n} of your open loans"
        else:
            text_zh = f"结清并关闭{n}笔未结清贷款中的{closed}笔"
            text_en = f"Pay off and close {closed} of your {n} open loans"
        changes.append(Change("loans", "feature", "cr_loans_open", n, n - closed,
                              text_zh, text_en))
    return _lever("loans", app, n - k, effort=k / (n - low), changes=changes,
                  cut=k * per_loan)


def amount(app: Application, low: float, policy: Policy) -> Lever | None:
    """Ask for less: requested_to_income falls with the amount, kept at the minimum line."""
    income = app.income
    if not income > 0:
        return None
    step = policy.round_to
    least = max(policy.min_line, math.ceil(low * 12 * income / step) * step)
    if not app.amount > least:
        return None
    asked = np.floor((app.amount - AMOUNT_FRACTIONS * (app.amount - least)) / step) * step
    asked = np.unique(np.maximum(asked, least))[::-1]
    asked = asked[asked < app.amount]
    changes = []
    for value in asked.tolist():
        zh, en = yuan(value)
        changes.append(Change("amount", "fact", "amount", app.amount, value,
                              f"申请金额不超过{zh}", f"Apply for {en} or less"))
    return _lever("amount", app, asked / (12 * income),
                  effort=(app.amount - asked) / (app.amount - least), changes=changes)


def term(app: Application, bounds: tuple[float, float], policy: Policy) -> Lever | None:
    """Choose another term the product offers: the feature and the fact change together."""
    offered = [t for t in policy.terms_months if bounds[0] <= t <= bounds[1]]
    span = max(policy.terms_months) - min(policy.terms_months)
    choices = sorted((t for t in offered if t != app.term), key=lambda t: abs(t - app.term))
    if not choices:
        return None
    changes = [Change("term", "fact", "term_months", _whole(app.term), t,
                      f"选择{t}个月的期限", f"Choose a {t}-month term") for t in choices]
    return _lever("term", app, choices, changes=changes, term=choices,
                  effort=[abs(t - app.term) / span if span else 0.0 for t in choices])


def court_enforcement(app: Application, lows: tuple[float, float]) -> Lever | None:
    """Settle the open court enforcement: the cases and their amount go to zero together."""
    cases, owed = app["court_enforcement_open"], app["court_enforcement_amount"]
    if not (cases > 0 or owed > 0) or max(lows) > 0:
        return None
    zh, en = yuan(owed)
    plural = "cases" if cases > 1 else "case"
    text_zh = "结清未结的法院执行案件" + (f"（执行标的{zh}）" if owed > 0 else "")
    text_en = f"Settle the open court enforcement {plural}" + (f" ({en})" if owed > 0 else "")
    change = Change("court_enforcement", "feature", "court_enforcement_open", _whole(cases), 0,
                    text_zh, text_en)
    return _lever("court_enforcement", app, [0.0, 0.0], effort=1.0, changes=[change])


def overdue_now(app: Application) -> Lever | None:
    """Repay what is overdue now (it clears knock-out K02 and the feature with it)."""
    if not app["cr_overdue_now"] > 0:
        return None
    change = Change("overdue_now", "feature", "cr_overdue_now", _whole(app["cr_overdue_now"]),
                    0, "还清当前逾期的款项", "Repay the payment that is overdue now")
    return _lever("overdue_now", app, [0.0], effort=0.0, changes=[change])


def purpose(app: Application, policy: Policy) -> Lever:
    """Choose a purpose the product allows (an application fact, not a model feature)."""
    allowed = next(p for p in PURPOSES if p in policy.allowed_purposes)
    change = Change("purpose", "fact", "purpose", app.purpose, allowed,
                    "选择本产品允许的贷款用途", "Choose a purpose this product allows")
    return _lever("purpose", app, np.empty((1, 0)), effort=0.0, changes=[change],
                  purpose=allowed)


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
