"""Replay a recorded decision: its feature values through its model and policy versions."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from audit import AuditQuery, AuditStore
from scoring.engine import DecisionEngine
from scoring.explanation import recorded_facts
from scoring.model import ModelError, load_model
from scoring.policy import PolicyError, load_policy
from scoring.reasons import REASONS_AVERAGE

COMPARED = ("outcome", "pd", "score", "grade", "credit_limit", "annual_rate", "reason_codes",
            "undetermined_rules")
PD_TOLERANCE = 1e-9


class ReplayError(LookupError):
    """A decision that cannot be replayed: not recorded, purged, or its versions are gone."""


class Replayer:
    """Replays decisions; engines of old versions are built once and kept.

    ``engine``, the one the service decides with, replays the decisions of its own model,
    fallbacks and policy without loading them a second time.
    """

    def __init__(self, store: AuditStore, model_search: tuple[Path, ...] = (),
                 engine: DecisionEngine | None = None) -> None:
        self.store = store
        self.model_search = model_search
        self._engines: dict[tuple[str, str], DecisionEngine] = {}
        if engine is not None:
            policy = engine.policy
            self._engines[(engine.model.version, policy.version)] = engine
            for fallback in engine.fallbacks.values():
                self._engines[(fallback.version, policy.version)] = DecisionEngine(
                    fallback, policy)
        self._lock = threading.Lock()

    def policy(self, version: str):
        """Return a policy version, the one in force without reading it again."""
        for (_, policy_version), engine in self._engines.items():
            if policy_version == version:
                return engine.policy
        return load_policy(version)

    def _engine(self, model_version: str, policy_version: str) -> DecisionEngine:
        key = (model_version, policy_version)
        with self._lock:
            if key not in self._engines:
                self._engines[key] = DecisionEngine(
                    load_model(model_version, search=self.model_search),
                    load_policy(policy_version))
            return self._engines[key]

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

    def replay(self, application_id: str) -> dict[str, Any]:
        """Re-run the recorded decision and compare it with what was recorded."""
        payload = self.recorded(application_id)
        if payload["outcome"] == "deferred" and "model_version" not in payload:
            same = {"outcome": "deferred", "missing_sources": payload["missing_sources"]}
            return {"application_id": application_id, "attempt": payload.get("attempt", 1),
                    "match": True, "recorded": same,
                    "replayed": same, "differences": [],
                    "note": "deferred before scoring: there is no model decision to replay"}
        try:
            engine = self._engine(payload["model_version"], payload["policy_version"])
        except (ModelError, PolicyError) as exc:
            raise ReplayError(str(exc)) from None
        model, policy = engine.model, engine.policy
        problems = []
        if model.sha256 != payload["model_sha256"]:
            problems.append({"field": "model_sha256", "recorded": payload["model_sha256"],
                             "replayed": model.sha256})
        if policy.digest != payload["policy_digest"]:
            problems.append({"field": "policy_digest", "recorded": payload["policy_digest"],
                             "replayed": policy.digest})
        names = model.spec.names
        try:
            facts = recorded_facts(payload, names)
        except ValueError as exc:
            raise ReplayError(str(exc)) from None
        x = np.array([[facts[n] for n in names]], dtype=np.float64)
        unknown = payload.get("unknown_sources", [])
        if engine.model_for(unknown) is None:
            raise ReplayError(f"model {model.version} does not decide without "
                              f"{', '.join(unknown)}; the record is inconsistent")
        # Reasons are ranked as the decision ranked them: a record of an earlier release, which
        # names no method, against the average applicant.
        method = payload.get("reasons_method", REASONS_AVERAGE)
        try:
            decisions = engine.decide(x, age=facts["age"], purpose=facts["purpose"],
                                      term_months=facts["term_months"], unknown_scopes=unknown,
                                      reasons_method=method)
        except ValueError as exc:
            raise ReplayError(str(exc)) from None
        row = decisions.row(0)
        recorded = {**{k: payload["decision"][k] for k in ("outcome", "pd", "score", "grade",
                                                           "credit_limit", "annual_rate")},
                    "reason_codes": payload["reason_codes"],
                    "undetermined_rules": payload["decision"].get("undetermined_rules", [])}
        replayed = {**{k: row[k] for k in ("outcome", "pd", "score", "grade", "credit_limit",
                                           "annual_rate")},
                    "reason_codes": [r["code"] for r in row["reasons"]],
                    "undetermined_rules": row["undetermined_rules"]}
        compared: tuple[str, ...] = COMPARED
        notes = [model.runtime_note()]
        if "reasons_method" not in payload and payload["outcome"] == "approved":
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
                "match": not differences,
                "recorded": recorded, "replayed": replayed, "differences": differences,
                "note": note or None}


def _same(field: str, a: Any, b: Any) -> bool:
    if field == "pd":
        return math.isclose(a, b, rel_tol=PD_TOLERANCE, abs_tol=1e-12)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return a == b
