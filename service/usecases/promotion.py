"""Setting the strategies in force: checked, stored and audited in one transaction.

Every model of the new plan must pass its card's checks (``scoring.governance.promotion``: the AUC
floor, monotone constraints present and honoured, the running spec's digest, the model's
SHA-256) and every policy must load within the regulatory caps. A plan that fails is refused
with every problem, by the field that named it, and nothing is written.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert

from scoring.governance.strategy import StrategyPlan
from scoring.online.spec import FeatureSpec
from service.domain.encoding import now_text
from service.persistence.tables import strategy_plans
from service.usecases.plan_checks import plan_problems
from service.usecases.plan_records import sign_statement
from service.usecases.strategies import STRATEGY_KIND, StrategyBook, latest_row

__all__ = ["PlansExhausted", "PromotionRefused", "plan_problems", "promote"]

# The largest seq a plan may have: strategy_plans.seq is a 32-bit integer on PostgreSQL.
MAX_SEQ = 2**31 - 1


class PromotionRefused(ValueError):
    """A plan whose strategies fail their checks; ``problems`` by field."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {' '.join(found)}"
                                   for where, found in problems.items()))


class PlansExhausted(Exception):
    """The newest row of ``strategy_plans`` holds the largest seq: no plan can follow it."""


def promote(book: StrategyBook, plan: StrategyPlan, *, actor: str, reason: str,
            spec: FeatureSpec, min_auc: float) -> dict[str, Any]:
    """Check ``plan``, then store it with the audit record of the change; return it as the
    API shows it. Raises PromotionRefused, writing nothing, when a check fails."""
    if not reason.strip():
        raise PromotionRefused({"reason": ["a change of strategies must say why"]})
    problems = plan_problems(plan, book.engines, spec=spec, min_auc=min_auc,
                             passed=book.models_passed)
    if problems:
        raise PromotionRefused(problems)
    return _store_plan(book, plan, actor=actor, reason=reason.strip(), checked={
        "min_auc": min_auc, "spec_digest": spec.digest,
        "models": sorted({s.model for _, s in plan.members()}),
        "policies": sorted({s.policy for _, s in plan.members()})})


def _store_plan(book: StrategyBook, plan: StrategyPlan, *, actor: str, reason: str,
                checked: dict[str, Any]) -> dict[str, Any]:
    """Store ``plan``, checked, as the next row with the audit record of the change, in one
    transaction; return it as the API shows it.

    The record names its row (``seq``, ``set_at``) besides the plan, the actor and the reason,
    and carries the service's signature over them, so that a worker adopts the row only if it
    holds what the record states and the service signed it (``service.usecases.plan_records``).
    The chain lock held by the writer orders the changes, so the next number is the latest
    row's plus one.
    """
    new = plan.to_dict()
    with book.store.writer() as writer:
        conn = writer.connection
        previous = latest_row(conn)
        before = (book.default.plan.to_dict() if previous is None
                  else _readable(previous.plan))
        if previous is not None and previous.seq >= MAX_SEQ:
            # Such a row was never set through the service (workers refuse it): say so,
            # rather than fail on the integer's overflow.
            raise PlansExhausted(f"the newest row of strategy_plans has seq {previous.seq}, "
                                 f"the largest a plan may have ({MAX_SEQ}): it was not set "
                                 "through the service; remove it, then set the plan again")
        seq = 1 + (previous.seq if previous is not None else 0)
        set_at = now_text()
        stated = {"seq": seq, "set_at": set_at,
                  "previous_seq": previous.seq if previous is not None else 0,
                  "new": new, "reason": reason}
        record = writer.append(STRATEGY_KIND, {
            **stated, "previous": before, "checked": checked,
            "signature": sign_statement(book.signing_key, {**stated, "set_by": actor})},
            actor=actor)
        conn.execute(insert(strategy_plans).values(
            seq=seq, plan=json.dumps(new, sort_keys=True), set_by=actor, reason=reason,
            set_at=set_at, audit_seq=record.seq))
    return {"seq": seq, **new, "set_by": actor, "set_at": set_at, "reason": reason,
            "previous": before, "audit_seq": record.seq, "effective_within_s": book.refresh_s}


def _readable(plan: str) -> Any:
    # A row edited outside the service may hold anything: a new plan is still set after it.
    try:
        return json.loads(plan)
    except ValueError:
        return plan
