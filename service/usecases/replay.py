"""Replay a recorded decision: its feature values through its model and policy versions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audit import AuditQuery, AuditStore
from scoring.governance.strategy import Strategy, StrategyError
from scoring.online.engine import DecisionEngine
from scoring.online.explanation import recorded_facts
from scoring.online.model import ModelError
from scoring.online.policy import PolicyError
from scoring.online.reasons import REASONS_AVERAGE
from service.usecases.engines import Engines

COMPARED = ("outcome", "pd", "score", "grade", "credit_limit", "annual_rate", "reason_codes",
            "undetermined_rules")
PD_TOLERANCE = 1e-9


class ReplayError(LookupError):
    """A decision that cannot be replayed: not recorded, purged, or its versions are gone."""


class InvalidStrategy(ValueError):
    """A strategy to replay under that is not of the form MODEL/POLICY, or whose model
    cannot decide alone (a fallback)."""


class Replayer:
    """Replays decisions under the strategy that made them, or under another one.

    Engines come from the worker's :class:`~service.usecases.engines.Engines`: a model or policy in
    force is not loaded a second time, and an old one is loaded once and kept.
    """

    def __init__(self, store: AuditStore, engines: Engines) -> None:
        self.store = store
        self.engines = engines

    def policy(self, version: str):
        """Return a policy version, one loaded already without reading it again."""
        return self.engines.policy(version)

    def _engine(self, model_version: str, policy_version: str) -> DecisionEngine:
        return self.engines.engine(model_version, policy_version)

    def recorded(self, application_id: str) -> dict[str, Any]:
        """Return the payload of the application's latest ``decision.made`` record.

        A deferred application decided again has one record per attempt; the latest decides.
        """
        query = AuditQuery(application_id=application_id, kinds=("decision.made",))
        records = self.store.query(query, limit=1, newest_first=True).items
        if not records:
            raise ReplayError(f"no decision is recorded for application {application_id}")
        payload = records[0].payload
        if payload is None:
            raise ReplayError(f"the decision of application {application_id} was purged")
        return payload

    def replay(self, application_id: str, strategy: str | None = None) -> dict[str, Any]:
        """Re-run the recorded decision and compare it with what was recorded.

        By default under the strategy that made it (its recorded model and policy versions,
        whose digests are checked); with ``strategy`` (``MODEL/POLICY``), under that one
        instead, to show what it would have decided on the same recorded facts.
        """
        payload = self.recorded(application_id)
        recorded_strategy = _strategy_name(payload)
        other = other_engine = None
        if strategy is not None:
            try:
                other = Strategy.parse(strategy, "strategy")
                other_engine = self.engines.candidate(other)
            except StrategyError as exc:
                raise InvalidStrategy(str(exc)) from None
            except (ModelError, PolicyError) as exc:
                raise ReplayError(str(exc)) from None
        named = {"strategy": other.name if other else recorded_strategy,
                 "recorded_strategy": recorded_strategy}
        if payload["outcome"] == "deferred" and "model_version" not in payload:
            same = {"outcome": "deferred", "missing_sources": payload["missing_sources"]}
            return {"application_id": application_id, "attempt": payload.get("attempt", 1),
                    **named, "match": True, "recorded": same,
                    "replayed": same, "differences": [],
                    "note": "deferred before scoring: there is no model decision to replay"}
        try:
            engine = (other_engine if other_engine is not None
                      else self._engine(payload["model_version"], payload["policy_version"]))
        except (ModelError, PolicyError) as exc:
            raise ReplayError(str(exc)) from None
        model, policy = engine.model, engine.policy
        problems = []
        if other is None and model.sha256 != payload["model_sha256"]:
            problems.append({"field": "model_sha256", "recorded": payload["model_sha256"],
                             "replayed": model.sha256})
        if other is None and policy.digest != payload["policy_digest"]:
            problems.append({"field": "policy_digest", "recorded": payload["policy_digest"],
                             "replayed": policy.digest})
        replayed = self._decide(engine, payload, other is None)
        recorded = {**{k: payload["decision"][k] for k in ("outcome", "pd", "score", "grade",
                                                           "credit_limit", "annual_rate")},
                    "reason_codes": payload["reason_codes"],
                    "undetermined_rules": payload["decision"].get("undetermined_rules", [])}
        compared: tuple[str, ...] = COMPARED
        notes = [model.runtime_note()]
        if other is not None:
            notes.append(f"replayed under {other.name}, not under {recorded_strategy}, which "
                         "decided: the differences are what it would have decided otherwise")
        elif "reasons_method" not in payload and payload["outcome"] == "approved":
            # Before each code had one meaning, an approval cited a feature's favourable text
            # under its adverse code: those codes cannot be given again, so they are shown,
            # not compared. The decision itself is.
            compared = tuple(k for k in COMPARED if k != "reason_codes")
            notes.append("the approval's reason codes were recorded before favourable texts "
                         "had codes of their own: shown, not compared")
        differences = problems + [
            {"field": k, "recorded": recorded[k], "replayed": replayed[k]}
            for k in compared if not _same(k, recorded[k], replayed[k])]
        note = "; ".join(n for n in notes if n)
        return {"application_id": application_id, "attempt": payload.get("attempt", 1),
                **named, "match": not differences,
                "recorded": recorded, "replayed": replayed, "differences": differences,
                "note": note or None}

    @staticmethod
    def _decide(engine: DecisionEngine, payload: dict[str, Any], own: bool) -> dict[str, Any]:
        """Decide the record's facts with ``engine``; ``own`` when it is the recorded one's
        (its reasons are then ranked as the record's were)."""
        names = engine.model.spec.names
        try:
            facts = recorded_facts(payload, names)
        except ValueError as exc:
            raise ReplayError(str(exc)) from None
        x = np.array([[facts[n] for n in names]], dtype=np.float64)
        unknown = payload.get("unknown_sources", [])
        if engine.model_for(unknown) is None:
            if own:
                raise ReplayError(f"model {engine.model.version} does not decide without "
                                  f"{', '.join(unknown)}; the record is inconsistent")
            # No model of that strategy decides without these sources: it would defer.
            return {"outcome": "deferred", "pd": None, "score": None, "grade": None,
                    "credit_limit": 0.0, "annual_rate": None, "reason_codes": [],
                    "undetermined_rules": []}
        # Reasons are ranked as the decision ranked them: a record of an earlier release, which
        # names no method, against the average applicant.
        method = payload.get("reasons_method", REASONS_AVERAGE) if own else None
        try:
            row = engine.decide(x, age=facts["age"], purpose=facts["purpose"],
                                term_months=facts["term_months"], unknown_scopes=unknown,
                                reasons_method=method).row(0)
        except ValueError as exc:
            raise ReplayError(str(exc)) from None
        return {**{k: row[k] for k in ("outcome", "pd", "score", "grade", "credit_limit",
                                       "annual_rate")},
                "reason_codes": [r["code"] for r in row["reasons"]],
                "undetermined_rules": row["undetermined_rules"]}


def _strategy_name(payload: dict[str, Any]) -> str:
    """The strategy a record names; a record made before strategies, by its versions."""
    named = payload.get("strategy")
    if named:
        return str(named["name"])
    return f"{payload.get('model_version', '-')}/{payload.get('policy_version', '-')}"


def _same(field: str, a: Any, b: Any) -> bool:
    if field == "pd":
        return math.isclose(a, b, rel_tol=PD_TOLERANCE, abs_tol=1e-12)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return a == b
