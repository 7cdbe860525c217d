"""The decision engine: features → score → policy → reasons, for one application or a batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.model import ModelArtifact, Scored
from scoring.policy import Policy, PolicyResult
from scoring.reasons import Reason, ReasonCoder


@dataclass(frozen=True, slots=True)
class Decisions:
    """Decisions for n applications, with everything needed to explain and replay them."""

    features: np.ndarray      # (n, F) in spec order
    scored: Scored
    policy: PolicyResult
    reasons: list[list[Reason]]
    model: ModelArtifact
    policy_version: str
    policy_digest: str
    terms_months: tuple[int, ...]

    def row(self, i: int) -> dict[str, Any]:
        """Return decision i as plain values (for the API, the audit record and replay)."""
        approved = self.policy.outcome[i] == "approved"
        rate = float(self.policy.annual_rate[i])
        return {
            "outcome": str(self.policy.outcome[i]),
            "credit_limit": float(self.policy.credit_limit[i]),
            "annual_rate": round(rate, 6) if approved else None,
            "terms_months": list(self.terms_months) if approved else [],
            "score": int(self.scored.score[i]),
            "grade": str(self.policy.grade[i]),
            "pd": round(float(self.scored.pd[i]), 8),
            "margin": float(self.scored.margin[i]),
            "base_value": self.scored.base_value,
            "rules_fired": list(self.policy.rules_fired[i]),
            "reasons": [r.to_dict() for r in self.reasons[i]],
            "model_version": self.model.version,
            "model_sha256": self.model.sha256,
            "policy_version": self.policy_version,
            "policy_digest": self.policy_digest,
        }


class DecisionEngine:
    """A model and a policy wired together once, reused for every decision."""

    def __init__(self, model: ModelArtifact, policy: Policy) -> None:
        self.model = model
        self.policy = policy
        self.reason_coder = ReasonCoder(model.spec, model.feature_names)
        self.spec_names = model.spec.names

    def decide(self, features: np.ndarray, *, age: Any, purpose: Any, term_months: Any,
               on_step: Callable[[str], None] | None = None) -> Decisions:
        """Decide n applications from their spec-ordered features and application facts.

        ``on_step`` is called after each stage ("scored", "policy_applied", "explained"),
        for the timeline of a single decision.
        """
        step = on_step or _ignore
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        scored = self.model.score(x)
        step("scored")
        facts: dict[str, Any] = {name: x[:, j] for j, name in enumerate(self.spec_names)}
        n = x.shape[0]
        facts["age"] = np.broadcast_to(np.asarray(age, dtype=float), (n,))
        facts["purpose"] = np.broadcast_to(np.asarray(purpose, dtype=object), (n,))
        facts["term_months"] = np.broadcast_to(np.asarray(term_months, dtype=float), (n,))
        result = self.policy.evaluate(facts, scored.pd)
        step("policy_applied")
        reasons = self.reason_coder.reasons(scored.contributions, result.outcome == "approved",
                                            result.rules_fired, self.policy)
        step("explained")
        return Decisions(x, scored, result, reasons, self.model, self.policy.version,
                         self.policy.digest, self.policy.terms_months)


def _ignore(_step: str) -> None:
    return None
