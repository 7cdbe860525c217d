"""The shadows' decisions: every shadow strategy decides the application's facts aside.

A shadow's outcome, line, price and reasons go into the decision's record, never into the
answer. A shadow that fails costs its own outcome, never the decision: it is logged and its
entry says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from datasources.outcome import GatherResult
from scoring.online.features import features_for_application
from service.usecases.strategies import LiveStrategy

log = logging.getLogger("flashloan.shadows")


def shadow_outcomes(shadows: Iterable[LiveStrategy], features: np.ndarray | None,
                    gathered: GatherResult, facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What each shadow would have decided, in the plan's order.

    ``features`` are the deciding strategy's (None when it scored nothing); every strategy of
    a plan runs on the same spec (promotion checks its digest), so they serve the shadows.
    """
    found = []
    for shadow in shadows:
        try:
            found.append(_decide(shadow, features, gathered, facts))
        except Exception as exc:
            log.exception("shadow %s failed; the decision stands without its outcome",
                          shadow.name)
            found.append({**_named(shadow), "outcome": None, "error": type(exc).__name__})
    return found


def _named(shadow: LiveStrategy) -> dict[str, Any]:
    return {"strategy": shadow.name, "model_version": shadow.engine.model.version,
            "policy_version": shadow.engine.policy.version}


def _decide(shadow: LiveStrategy, features: np.ndarray | None, gathered: GatherResult,
            facts: Mapping[str, Any]) -> dict[str, Any]:
    engine = shadow.engine
    unknown = gathered.unknown_scopes
    model = engine.model_for(unknown)
    if not gathered.sufficient or model is None:
        return {**_named(shadow), "outcome": "deferred", "scored": False,
                "credit_limit": None, "annual_rate": None, "grade": None, "score": None,
                "pd": None, "reason_codes": [], "reasons": []}
    if features is None:
        features = features_for_application(gathered.records, facts["amount"],
                                            facts["term_months"], engine.model.spec)
    row = engine.decide(features, age=facts["age"], purpose=facts["purpose"],
                        term_months=facts["term_months"], unknown_scopes=unknown).row(0)
    return {**_named(shadow), "model_version": row["model_version"], "outcome": row["outcome"],
            "scored": True, "credit_limit": row["credit_limit"],
            "annual_rate": row["annual_rate"], "grade": row["grade"], "score": row["score"],
            "pd": row["pd"], "reason_codes": [r["code"] for r in row["reasons"]],
            "reasons": row["reasons"]}
