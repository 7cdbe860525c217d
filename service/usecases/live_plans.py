"""A plan with its engines built: the strategies a worker decides under, each with its role.

``build_plan`` loads (through the worker's ``Engines``) every model and policy a plan names;
``plan_view`` is how the API shows a plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scoring.governance.drift import DriftReference
from scoring.governance.strategy import SHADOW, Strategy, StrategyPlan
from scoring.online.engine import DecisionEngine
from scoring.recourse import Recourse
from service.usecases.engines import Engines

__all__ = ["LivePlan", "LiveStrategy", "build_plan", "plan_view"]


@dataclass(frozen=True, slots=True)
class LiveStrategy:
    """A strategy of the plan in force, with its role and its engine."""

    role: str
    strategy: Strategy
    engine: DecisionEngine
    # Finds what would lead to approval under this strategy; None without a reference.
    recourse: Recourse | None = None

    @property
    def name(self) -> str:
        return self.strategy.name

    def named(self) -> dict[str, str]:
        """How a decision record names it."""
        return {"name": self.name, "role": self.role,
                "model_version": self.engine.model.version,
                "policy_version": self.engine.policy.version}


@dataclass(frozen=True, slots=True)
class LivePlan:
    """A plan with its engines built; ``seq`` 0 is the settings' plan (none stored)."""

    seq: int
    plan: StrategyPlan
    members: tuple[LiveStrategy, ...]
    # Every model's training distributions (its card's drift reference), by version: the
    # roll-up counts decisions in their bins.
    references: dict[str, DriftReference | None]
    set_by: str | None = None
    set_at: str | None = None
    reason: str | None = None

    def deciding(self, subject: str) -> LiveStrategy:
        """The strategy that decides the applicant ``subject``: the same one every time."""
        role, strategy = self.plan.deciding(subject)
        return next(m for m in self.members if m.role == role and m.strategy == strategy)

    @property
    def champion(self) -> LiveStrategy:
        return self.members[0]

    @property
    def shadows(self) -> tuple[LiveStrategy, ...]:
        return tuple(m for m in self.members if m.role == SHADOW)


def plan_view(seq: int, plan: StrategyPlan, meta: dict[str, Any]) -> dict[str, Any]:
    """A plan as the API shows it: its strategies, each member with its role, who set it."""
    return {"seq": seq, **plan.to_dict(), "members": [
        {"name": s.name, "role": role, "model_version": s.model, "policy_version": s.policy,
         "share": plan.challenger_share if role == "challenger" else None}
        for role, s in plan.members()], **meta}


def build_plan(engines: Engines, plan: StrategyPlan, seq: int = 0,
               meta: dict[str, Any] | None = None) -> LivePlan:
    """Build the engines of every strategy of ``plan``; ModelError or PolicyError if one
    cannot be loaded."""
    members = []
    references: dict[str, DriftReference | None] = {}
    for role, s in plan.members():
        engine = engines.engine(s.model, s.policy)
        members.append(LiveStrategy(role, s, engine, engines.recourse(engine)))
        references.update(engines.references(engine))
    return LivePlan(seq, plan, tuple(members), references, **(meta or {}))
