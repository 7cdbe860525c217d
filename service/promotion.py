"""Setting the strategies in force: checked, stored and audited in one transaction.

Every model of the new plan must pass its card's checks (``scoring.promotion``: the AUC
floor, monotone constraints present and honoured, the running spec's digest, the model's
SHA-256) and every policy must load within the regulatory caps. A plan that fails is refused
with every problem, by the field that named it, and nothing is written.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert

from scoring.policy import policy_path, policy_versions
from scoring.promotion import check_model, check_policy
from scoring.spec import FeatureSpec
from scoring.strategy import StrategyPlan
from service.db import now_text, strategy_plans
from service.engines import Engines
from service.strategies import STRATEGY_KIND, StrategyBook, latest_row


class PromotionRefused(ValueError):
    """A plan whose strategies fail their checks; ``problems`` by field."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {' '.join(found)}"
                                   for where, found in problems.items()))


def plan_problems(plan: StrategyPlan, engines: Engines, *, spec: FeatureSpec,
                  min_auc: float) -> dict[str, list[str]]:
    """Every problem of every strategy of ``plan``, by the field that named it."""
    fields = ["champion"] + (["challenger.strategy"] if plan.challenger else []) + [
        f"shadows.{i}" for i in range(len(plan.shadows))]
    problems: dict[str, list[str]] = {}
    for where, (_, strategy) in zip(fields, plan.members(), strict=True):
        found = check_model(strategy.model, spec=spec, search=engines.model_search,
                            min_auc=min_auc)
        if not found and (without := engines.model(strategy.model).without):
            found.append(f"model {strategy.model} is a fallback trained without "
                         f"{', '.join(sorted(without))}: it decides only when that source did "
                         "not answer; name the model it stands in for")
        if "/" in strategy.policy or strategy.policy.endswith(".json"):
            found.append(f"policy must be a policy version (one of "
                         f"{', '.join(_versions(engines))}), not a file; got "
                         f"{strategy.policy!r}")
        elif (path := policy_path(strategy.policy, engines.policy_search)) is None:
            found.append(f"policy {strategy.policy} is not a known version (known: "
                         f"{', '.join(_versions(engines))})")
        else:
            found += check_policy(str(path))
        if found:
            problems[where] = found
    return problems


def _versions(engines: Engines) -> list[str]:
    return policy_versions(engines.policy_search)


def promote(book: StrategyBook, plan: StrategyPlan, *, actor: str, reason: str,
            spec: FeatureSpec, min_auc: float) -> dict[str, Any]:
    """Check ``plan``, then store it with the audit record of the change; return it as the
    API shows it. Raises PromotionRefused, writing nothing, when a check fails."""
    if not reason.strip():
        raise PromotionRefused({"reason": ["a change of strategies must say why"]})
    problems = plan_problems(plan, book.engines, spec=spec, min_auc=min_auc)
    if problems:
        raise PromotionRefused(problems)
    new = plan.to_dict()
    with book.store.writer() as writer:
        conn = writer.connection
        previous = latest_row(conn)
        before = (json.loads(previous.plan) if previous is not None
                  else book.default.plan.to_dict())
        set_at = now_text()
        record = writer.append(STRATEGY_KIND, {
            "previous": before, "previous_seq": previous.seq if previous is not None else 0,
            "new": new, "reason": reason.strip(), "checked": {
                "min_auc": min_auc, "spec_digest": spec.digest,
                "models": sorted({s.model for _, s in plan.members()}),
                "policies": sorted({s.policy for _, s in plan.members()})}},
            actor=actor)
        seq = conn.execute(insert(strategy_plans).values(
            plan=json.dumps(new, sort_keys=True), set_by=actor, reason=reason.strip(),
            set_at=set_at, audit_seq=record.seq)).inserted_primary_key[0]
    return {"seq": seq, **new, "set_by": actor, "set_at": set_at, "reason": reason.strip(),
            "previous": before, "audit_seq": record.seq, "effective_within_s": book.refresh_s}
