"""The decision engine: features → score → policy → reasons, for one application or a batch.

A decision's record is built here, from the decisions themselves (:meth:`Decisions.record`):
everything the policy read, the model's exact contributions and what came of them, so that
replay needs nothing else. Its explanation is a reading of that record
(:func:`scoring.online.explanation.explanation_of`), never a second copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.online.explanation import explanation_of
from scoring.online.model import ModelArtifact, Scored
from scoring.online.policy import Policy, PolicyResult
from scoring.online.reasons import REASONS_AVERAGE, REASONS_REFERENCE, Reason, ReasonCoder
from scoring.online.unknown import UnknownFeatures, unknown_features, unknown_income_scopes


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
    unknown: UnknownFeatures = field(default_factory=lambda: UnknownFeatures((), (), ()))
    # The application facts the policy read besides the features: age, purpose, term_months.
    facts: Mapping[str, np.ndarray] = field(default_factory=dict)
    # Contributions (n, F in the model's order) against the model's reference, which ranked
    # the reasons: NaN rows for decisions not explained (deferrals); None without a reference.
    reference_contributions: np.ndarray | None = None
    # What the reasons were ranked by (scoring.online.reasons): against the reference or the
    # average.
    reasons_method: str = REASONS_AVERAGE

    def row(self, i: int) -> dict[str, Any]:
        """Return decision i as plain values (for the API, the audit record and replay)."""
        approved = self.policy.outcome[i] == "approved"
        rate = float(self.policy.annual_rate[i])
        return {
            "outcome": str(self.policy.outcome[i]),
            "credit_limit": float(self.policy.credit_limit[i]),
            "annual_rate": round(rate, 6) if approved else None,
            "terms_months": list(self.terms_months) if approved else [],
            # The bound that set the line (scoring.online.policy.LINE_BOUNDS), when one was set.
            "line_bound": (str(self.policy.line_bound[i])
                           if approved and self.policy.line_bound is not None else None),
            "score": int(self.scored.score[i]),
            "grade": str(self.policy.grade[i]),
            "pd": round(float(self.scored.pd[i]), 8),
            "margin": float(self.scored.margin[i]),
            "base_value": self.scored.base_value,
            "rules_fired": list(self.policy.rules_fired[i]),
            "undetermined_rules": (list(self.policy.undetermined[i])
                                   if self.policy.undetermined else []),
            "unknown_sources": list(self.unknown.scopes),
            "unknown_features": list(self.unknown.unknown),
            "partial_features": list(self.unknown.partial),
            "reasons": [r.to_dict() for r in self.reasons[i]],
            "model_version": self.model.version,
            "model_sha256": self.model.sha256,
            "policy_version": self.policy_version,
            "policy_digest": self.policy_digest,
        }

    def record(self, i: int, row: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return what decision i's audit record holds of the decision, as plain values.

        Every fact the policy read (all features of the spec, unknown ones as null, and the
        application facts), the model and policy that decided with their digests, the exact
        contributions (they add up to ``margin`` with ``base_value``), the outcome, reasons
        and what was unknown. ``row`` is :meth:`row` of ``i`` when the caller has it already.

        ``reasons_method`` says what the reasons were ranked by; with a reference, ``reference``
        names it (its SHA-256 and mean margin) and ``reference_contributions`` are the
        contributions against it (they add up to ``margin`` with its ``mean_margin``; null
        for a deferral, which has no reasons).
        """
        row = self.row(i) if row is None else row
        model = self.model
        spec_names = model.spec.names
        values = self.features[i]
        contribs = self.scored.contributions[i]
        facts = {name: _plain(self.facts[name][i]) for name in _POLICY_FACTS
                 if name in self.facts}
        return {
            "outcome": row["outcome"],
            "model_version": model.version, "model_sha256": model.sha256,
            "policy_version": self.policy_version, "policy_digest": self.policy_digest,
            "decision": {k: row[k] for k in _DECISION_FIELDS},
            "reason_codes": [r["code"] for r in row["reasons"]],
            "reasons": row["reasons"],
            "undetermined_rules": row["undetermined_rules"],
            "unknown_sources": row["unknown_sources"],
            "unknown_features": row["unknown_features"],
            "partial_features": row["partial_features"],
            "facts": facts,
            "features": {n: _finite(values[j]) for j, n in enumerate(spec_names)},
            "contributions": {n: float(contribs[j])
                              for j, n in enumerate(model.feature_names)},
            "base_value": row["base_value"], "margin": row["margin"],
            **self._reference_fields(i),
        }

    def _reference_fields(self, i: int) -> dict[str, Any]:
        reference = self.model.reference
        if reference is None or self.reasons_method != REASONS_REFERENCE:
            return {"reasons_method": REASONS_AVERAGE, "reference": None,
                    "reference_contributions": None}
        against = None
        if self.reference_contributions is not None and \
                not math.isnan(self.reference_contributions[i, 0]):
            against = {n: float(v) for n, v in zip(self.model.feature_names,
                                                   self.reference_contributions[i].tolist(),
                                                   strict=True)}
        return {"reasons_method": REASONS_REFERENCE,
                "reference": {"sha256": reference.sha256, "mean_margin": reference.mean_margin},
                "reference_contributions": against}

    def explanation(self, i: int, application_id: str | None = None) -> dict[str, Any]:
        """Return decision i's explanation: the reading of its record a person is shown."""
        return explanation_of({"application_id": application_id, **self.record(i)},
                              self.model.spec)


_DECISION_FIELDS = ("outcome", "credit_limit", "annual_rate", "terms_months", "line_bound",
                    "score", "grade",
                    "pd", "rules_fired", "undetermined_rules")
_POLICY_FACTS = ("age", "purpose", "term_months")


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _plain(value: Any) -> Any:
    """A numpy scalar as the JSON value it stands for (whole numbers as integers)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class DecisionEngine:
    """A model, its fallbacks and a policy wired together once, reused for every decision.

    ``fallbacks`` maps an income source to the model trained without it: it scores the
    applications that source did not answer for, so that no score, contribution or reason
    rests on data never received.
    """

    def __init__(self, model: ModelArtifact, policy: Policy,
                 fallbacks: Mapping[str, ModelArtifact] | None = None) -> None:
        self.model = model
        self.policy = policy
        self.fallbacks = dict(fallbacks or {})
        self._coders = {id(m): ReasonCoder(m.spec, m.feature_names)
                        for m in (model, *self.fallbacks.values())}
        self.reason_coder = self._coders[id(model)]
        self.spec_names = model.spec.names
        # What each model's unknown sources leave unknown, and their columns: fixed per
        # model, so worked out here rather than on every decision.
        self._unknown: dict[frozenset[str], tuple[UnknownFeatures, list[int]]] = {}
        for m in (model, *self.fallbacks.values()):
            found = unknown_features(m.spec, m.without)
            self._unknown[m.without] = (found, [self.spec_names.index(n) for n in found.unknown])

    def model_for(self, unknown_scopes: Collection[str] = ()) -> ModelArtifact | None:
        """Return the model trained for exactly these unknown sources, or None (defer).

        Only income sources have fallbacks; without the credit report or the court
        records there is no model to decide with.
        """
        lost = unknown_income_scopes(unknown_scopes)
        if set(unknown_scopes) - lost:
            return None
        for model in (self.model, *self.fallbacks.values()):
            if model.without == lost:
                return model
        return None

    def _inputs(self, features: np.ndarray, age: Any, purpose: Any, term_months: Any,
                unknown_scopes: Collection[str]
                ) -> tuple[ModelArtifact, UnknownFeatures, np.ndarray, dict[str, Any]]:
        """Return the model that decides, what is unknown, the rows and the policy's facts."""
        model = self.model_for(unknown_scopes)
        if model is None:
            raise ValueError(f"no model decides without {', '.join(sorted(unknown_scopes))}; "
                             "such an application must be deferred")
        # The model found is the one trained without exactly these (income) sources.
        unknown, unknown_columns = self._unknown[model.without]
        x = np.array(features, dtype=np.float64, ndmin=2)
        if unknown_columns:
            # Whatever the caller passed, nothing of a source that did not answer is used.
            x[:, unknown_columns] = np.nan
        # The features the policy reads, as columns of x.
        facts: dict[str, Any] = {name: x[:, j] for j, name in enumerate(self.spec_names)
                                 if name in self.policy.FACTS}
        n = x.shape[0]
        for name, value, dtype in (("age", age, float), ("purpose", purpose, object),
                                   ("term_months", term_months, float)):
            column = np.asarray(value, dtype=dtype)
            # A scalar holds for every row: repeated, which costs less than broadcast_to.
            facts[name] = column.repeat(n) if column.ndim == 0 else np.broadcast_to(column, (n,))
        return model, unknown, x, facts

    def outcomes(self, features: np.ndarray, *, age: Any, purpose: Any, term_months: Any,
                 unknown_scopes: Collection[str] = ()) -> tuple[np.ndarray, PolicyResult]:
        """Decide rows as :meth:`decide` does, without explaining them: the PDs and the policy's
        result. For searches over many candidate rows (recourse), whose findings
        :meth:`decide` then confirms."""
        model, unknown, x, facts = self._inputs(features, age, purpose, term_months,
                                                unknown_scopes)
        pd = model.calibration.pd(model.predict_margin(x))
        return pd, self.policy.evaluate(facts, pd, unknown.scopes)

    def decide(self, features: np.ndarray, *, age: Any, purpose: Any, term_months: Any,
               unknown_scopes: Collection[str] = (),
               on_step: Callable[[str], None] | None = None,
               reasons_method: str | None = None) -> Decisions:
        """Decide n applications from their spec-ordered features and application facts.

        ``unknown_scopes`` are the sources that did not answer (the same for all n rows):
        their features are unknown, the model trained without them scores, and the policy
        fires only on evidence received (see ``Policy.evaluate``). ``on_step`` is called
        after each stage ("scored", "policy_applied", "explained"), for the timeline of a
        single decision. ``reasons_method`` (``scoring.online.reasons``) ranks the reasons against
        the model's reference or against the average applicant, as a decision recorded that
        way was; by default against the reference when the model has one.
        """
        step = on_step or _ignore
        model, unknown, x, facts = self._inputs(features, age, purpose, term_months,
                                                unknown_scopes)
        method = reasons_method or (REASONS_AVERAGE if model.reference is None
                                    else REASONS_REFERENCE)
        if method not in (REASONS_REFERENCE, REASONS_AVERAGE) or (
                method == REASONS_REFERENCE and model.reference is None):
            raise ValueError(f"reasons_method must be {REASONS_AVERAGE!r}"
                             + ("" if model.reference is None else f" or {REASONS_REFERENCE!r}")
                             + f" for model {model.version}; got {method!r}")
        scored = model.score(x)
        step("scored")
        n = x.shape[0]
        result = self.policy.evaluate(facts, scored.pd, unknown.scopes)
        step("policy_applied")
        # A deferral is no adverse decision: it gives no reasons (its explanation is kept).
        explained = np.flatnonzero(result.outcome != "deferred")
        # Contributions against the reference, when the reasons are ranked by them (None
        # otherwise), for the decisions that give reasons.
        against = (model.reference_contributions(x[explained])
                   if method == REASONS_REFERENCE and explained.size else None)
        coded = self._coders[id(model)].reasons(
            scored.contributions[explained], (result.outcome == "approved")[explained],
            [result.rules_fired[i] for i in explained.tolist()], self.policy,
            ranked_by=against)
        reasons: list[list[Reason]] = [[] for _ in range(n)]
        for i, given in zip(explained.tolist(), coded, strict=True):
            reasons[i] = given
        reference = None
        if against is not None:
            reference = np.full((n, against.shape[1]), np.nan)
            reference[explained] = against
        step("explained")
        return Decisions(x, scored, result, reasons, model, self.policy.version,
                         self.policy.digest, self.policy.terms_months, unknown,
                         {k: facts[k] for k in _POLICY_FACTS}, reference, method)


def _ignore(_step: str) -> None:
    return None
