"""The strategies in force: the champion, the challenger and the shadows, and their changes.

A plan is stored as a row of ``strategy_plans`` with the audit record of its change, in one
transaction. Each worker keeps the plan it decides under with its engines built, and looks
for a newer plan at most every ``refresh_s`` seconds, before a decision: every decision made
more than ``refresh_s`` seconds after a change is made under it, in every worker, without a
restart. With no plan stored, the settings' model and policy are the champion.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from audit import AuditStore
from scoring.drift import DriftReference
from scoring.engine import DecisionEngine
from scoring.model import ModelError
from scoring.policy import PolicyError
from scoring.recourse import Recourse
from scoring.strategy import SHADOW, Strategy, StrategyPlan
from service.db import strategy_plans
from service.engines import Engines

log = logging.getLogger("flashloan.strategies")

STRATEGY_KIND = "strategy.set"
_LATEST = (select(strategy_plans).order_by(strategy_plans.c.seq.desc()).limit(1))
_LATEST_SEQ = (select(strategy_plans.c.seq).order_by(strategy_plans.c.seq.desc()).limit(1))


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


def _meta(row: Any) -> dict[str, Any]:
    return {"set_by": row.set_by, "set_at": row.set_at, "reason": row.reason}


def latest_row(conn: Connection) -> Any:
    return conn.execute(_LATEST).first()


class StrategyBook:
    """One worker's plan in force, refreshed from the database at most every ``refresh_s``."""

    def __init__(self, store: AuditStore, engines: Engines, default: StrategyPlan, *,
                 refresh_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.engines = engines
        self.default = build_plan(engines, default)
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._live = self.default
        self._checked = -float("inf")
        self.refresh()

    def current(self) -> LivePlan:
        """The plan to decide under now: refreshed first if the last look is too old."""
        if self._clock() - self._checked >= self.refresh_s:
            self.refresh()
        return self._live

    def refresh(self) -> LivePlan:
        """Look for a newer plan and build it. A plan this worker cannot build (a model not
        on this host) is logged and the one in force kept, as is a database not answering."""
        with self._lock:
            now = self._clock()
            if now - self._checked < self.refresh_s:
                return self._live
            try:
                with self.store.engine.connect() as conn:
                    seq = conn.execute(_LATEST_SEQ).scalar()
                    row = latest_row(conn) if seq is not None and seq != self._live.seq else None
            except Exception:
                # Looked for again after the interval, not on every request meanwhile.
                self._checked = now
                log.exception("could not read the strategies in force; keeping plan %s",
                              self._live.seq)
                return self._live
            if row is not None:
                try:
                    self._live = build_plan(self.engines,
                                            StrategyPlan.from_dict(json.loads(row.plan)),
                                            row.seq, _meta(row))
                    log.info("strategy plan %s in force: %s", row.seq, row.plan)
                except (ModelError, PolicyError, ValueError):
                    log.exception("strategy plan %s cannot be built here; keeping plan %s",
                                  row.seq, self._live.seq)
            self._checked = now
            return self._live

    def roles(self) -> dict[str, list[str]]:
        """Each model version of the plan in force with its roles (fallbacks included)."""
        found: dict[str, list[str]] = {}
        for m in self.current().members:
            found.setdefault(m.engine.model.version, []).append(m.role)
            for fallback in m.engine.fallbacks.values():
                roles = found.setdefault(fallback.version, [])
                if "fallback" not in roles:
                    roles.append("fallback")
        return found

    def stored(self) -> dict[str, Any]:
        """The latest plan stored (or the settings' plan), as the API shows it."""
        with self.store.engine.connect() as conn:
            row = latest_row(conn)
        view = (plan_view(0, self.default.plan, {"set_by": None, "set_at": None, "reason": None})
                if row is None else
                plan_view(row.seq, StrategyPlan.from_dict(json.loads(row.plan)), _meta(row)))
        return {**view, "refresh_s": self.refresh_s}

