"""The strategies in force: the champion, the challenger and the shadows, and their changes.

A plan is stored as a row of ``strategy_plans`` with the audit record of its change, in one
transaction. Each worker keeps the plan it decides under with its engines built, and looks
for a newer plan at most every ``refresh_s`` seconds, before a decision: every decision made
more than ``refresh_s`` seconds after a change is made under it, in every worker, without a
restart. With no plan stored, the settings' model and policy are the champion.

A worker adopts the newest row only if it holds what its audit record states
(``service.usecases.plan_records``) and passes the checks a change must pass
(``service.usecases.plan_checks``). Otherwise it keeps the plan it has, logs why, and says so (the
metrics, and ``refused`` in the plan the API shows), until a newer row comes. A worker with
no stored plan in force (one just started) whose newest row is refused takes the plan the
workers before it trust: the newest trusted ``strategy.set`` record's when the row is refused
for a later record without a row (the newest row deleted), else the newest earlier row that
passes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from audit import AuditStore
from scoring.governance.strategy import StrategyPlan
from scoring.online.model import ModelError
from scoring.online.policy import PolicyError
from service.persistence.tables import strategy_plans
from service.usecases.engines import Engines
from service.usecases.live_plans import LivePlan, LiveStrategy, build_plan, plan_view
from service.usecases.plan_checks import plan_problems
from service.usecases.plan_records import (
    CANNOT_BUILD,
    FAILS_CHECKS,
    LATER_RECORD,
    STRATEGY_KIND,
    PlanRefusal,
    first_signed,
    later_record,
    newest_plan_record,
    plan_records,
    plan_row_refusal,
    read_record,
    stated_seq,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger("flashloan.strategies")

__all__ = ["STRATEGY_KIND", "LivePlan", "LiveStrategy", "StrategyBook", "build_plan",
           "latest_row", "plan_view"]

_NEWEST = select(strategy_plans).order_by(strategy_plans.c.seq.desc())
_LATEST = _NEWEST.limit(1)


def _meta(row: Any) -> dict[str, Any]:
    return {"set_by": row.set_by, "set_at": row.set_at, "reason": row.reason}


def latest_row(conn: Connection) -> Any:
    return conn.execute(_LATEST).first()


class StrategyBook:
    """One worker's plan in force, refreshed from the database at most every ``refresh_s``.

    ``min_auc`` is the promotion floor a stored plan's models are checked against again;
    ``signing_key`` is the service's (the checkpoints'): a change is signed with it and a
    stored plan's record verified under its public key; ``on_verdict`` hears each
    judgement of a newest row: None when adopted, else the reason it was refused (the
    metrics count them).
    """

    def __init__(self, store: AuditStore, engines: Engines, default: StrategyPlan, *,
                 refresh_s: float, min_auc: float, signing_key: Ed25519PrivateKey,
                 on_verdict: Callable[[str | None], None] = lambda refused: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.engines = engines
        self.default = build_plan(engines, default)
        self.refresh_s = refresh_s
        self.min_auc = min_auc
        self.signing_key = signing_key
        self.public_key = signing_key.public_key()
        # The models that passed their card's checks in this worker (service.usecases.plan_checks).
        self.models_passed: set[tuple[str, str, float]] = set()
        self._on_verdict = on_verdict
        self._clock = clock
        self._lock = threading.Lock()
        self._live = self.default
        self._checked = -float("inf")
        # The newest row as last judged (with the latest strategy.set record then): a row is
        # judged once, not at every look. ``refused`` is that row when it was refused.
        self._judged: tuple[Any, ...] | None = None
        self.refused: dict[str, Any] | None = None
        self.refresh()

    def current(self) -> LivePlan:
        """The plan to decide under now: refreshed first if the last look is too old."""
        if self._clock() - self._checked >= self.refresh_s:
            self.refresh()
        return self._live

    def refresh(self, *, force: bool = False) -> LivePlan:
        """Look for a newer plan and adopt it if its record states it and it passes the
        checks; else keep the plan in force. A database not answering keeps it too."""
        with self._lock:
            now = self._clock()
            if not force and now - self._checked < self.refresh_s:
                return self._live
            try:
                with self.store.engine.connect() as conn:
                    # Read before the rows: a change committed between the two reads shows
                    # its row too, so its record is never taken for one without a row.
                    newest_set = newest_plan_record(conn)
                    rows = conn.execute(_NEWEST.limit(2)).all()
                    seen = None if not rows else (*rows[0], newest_set)
                    fresh = seen is not None and seen != self._judged
                    record = read_record(conn, rows[0].audit_seq) if fresh else None
                    records = [r for r in plan_records(conn) if r.seq <= (newest_set or 0)
                               ] if fresh else []
            except Exception:
                # Looked for again after the interval, not on every request meanwhile.
                self._checked = now
                log.exception("could not read the strategies in force; keeping plan %s",
                              self._live.seq)
                return self._live
            if seen is not None and seen != self._judged:
                first = first_signed(records)
                later = later_record(rows[0], records, first, self.public_key)
                self._judge(rows[0], record, rows[1].seq if len(rows) > 1 else 0, first, later)
                self._judged = seen
                if self.refused is not None and self._live is self.default:
                    if later is not None:
                        self._adopt_record(later, rows[0].seq)
                    else:
                        self._adopt_newest_trusted()
            self._checked = now
            return self._live

    def _judge(self, row: Any, record: Any, previous_seq: int, first: int | None,
               later: Any | None) -> None:
        """Adopt ``row``, or refuse it and say why."""
        refusal = plan_row_refusal(row, record, previous_seq, first_signed=first,
                                   public_key=self.public_key)
        if refusal is None and later is not None:
            refusal = PlanRefusal(LATER_RECORD, f"record {later.seq} sets a plan after plan "
                                                f"{row.seq}, and no row holds it")
        verdict = refusal or self._vetted(row)
        if isinstance(verdict, PlanRefusal):
            self.refused = {"seq": row.seq, "audit_seq": row.audit_seq,
                            "reason": verdict.reason, "problem": verdict.problem}
            log.error("strategy plan %s refused (%s): %s; keeping plan %s", row.seq,
                      verdict.reason, verdict.problem, self._live.seq)
            self._on_verdict(verdict.reason)
            return
        self._live, self.refused = verdict, None
        log.info("strategy plan %s in force: %s", row.seq, row.plan)
        self._on_verdict(None)

    def _adopt_record(self, record: Any, row_seq: int) -> None:
        """Take the plan ``record`` states (the newest row, deleted), if it passes the
        checks: never a plan older than the one the workers before trust."""
        stated = json.loads(record.payload)
        named = stated_seq(record)
        verdict = self._vetted(SimpleNamespace(
            seq=row_seq + 1 if named is None else named,
            plan=json.dumps(stated.get("new"), sort_keys=True), set_by=record.actor,
            set_at=stated.get("set_at"), reason=stated.get("reason")))
        if isinstance(verdict, LivePlan):
            self._live = verdict
            log.warning("strategy plan %s in force, as record %s states it: its row is "
                        "missing", verdict.seq, record.seq)
        else:
            log.error("the plan record %s states is refused (%s): %s; keeping plan %s",
                      record.seq, verdict.reason, verdict.problem, self._live.seq)

    def _adopt_newest_trusted(self) -> None:
        """A worker with no stored plan in force (one just started) whose newest row is
        refused takes the newest earlier row that its record states and the checks pass,
        as the workers that adopted it before keep it: not the settings' plan."""
        try:
            with self.store.engine.connect() as conn:
                rows = conn.execute(_NEWEST).all()
                first = first_signed(plan_records(conn))
                for at, row in enumerate(rows[1:], start=1):
                    previous_seq = rows[at + 1].seq if at + 1 < len(rows) else 0
                    record = read_record(conn, row.audit_seq)
                    if plan_row_refusal(row, record, previous_seq, first_signed=first,
                                        public_key=self.public_key) is not None:
                        continue
                    verdict = self._vetted(row)
                    if isinstance(verdict, LivePlan):
                        self._live = verdict
                        log.warning("strategy plan %s in force, the newest this worker "
                                    "trusts", row.seq)
                        return
        except Exception:
            log.exception("could not look for an earlier trusted plan; keeping plan %s",
                          self._live.seq)

    def _vetted(self, row: Any) -> PlanRefusal | LivePlan:
        """The plan of ``row`` built, if it passes the checks a change must pass."""
        try:
            doc = json.loads(row.plan)
            if not isinstance(doc, dict):
                return PlanRefusal(FAILS_CHECKS, f"plan {row.seq} is not a plan: {row.plan}")
            plan = StrategyPlan.from_dict(doc)
            problems = plan_problems(plan, self.engines, min_auc=self.min_auc,
                                     spec=self.default.champion.engine.model.spec,
                                     passed=self.models_passed)
        except (ModelError, PolicyError, ValueError) as exc:
            return PlanRefusal(FAILS_CHECKS, f"plan {row.seq}: {exc}")
        except Exception as exc:
            # A card or file unreadable here (OSError, KeyError): the row is judged, not
            # read again at every decision.
            log.exception("plan %s could not be checked", row.seq)
            return PlanRefusal(CANNOT_BUILD, f"plan {row.seq} cannot be checked here: "
                                             f"{type(exc).__name__}: {exc}")
        if problems:
            return PlanRefusal(FAILS_CHECKS, f"plan {row.seq}: " + "; ".join(
                f"{where}: {' '.join(found)}" for where, found in problems.items()))
        try:
            return build_plan(self.engines, plan, row.seq, _meta(row))
        except Exception as exc:
            # A model or policy missing on this host: judged again when a newer row comes.
            if not isinstance(exc, (ModelError, PolicyError, ValueError)):
                log.exception("plan %s could not be built", row.seq)
            return PlanRefusal(CANNOT_BUILD, f"plan {row.seq} cannot be built here: {exc}")

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
        """The plan in force after a look at the database now, as the API shows it, with the
        newest row if it was refused and why (None when it is the plan in force)."""
        live = self.refresh(force=True)
        meta = {"set_by": live.set_by, "set_at": live.set_at, "reason": live.reason}
        return {**plan_view(live.seq, live.plan, meta), "refused": self.refused,
                "refresh_s": self.refresh_s}
