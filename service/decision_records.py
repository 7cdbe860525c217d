"""The audit records and stored views of one decision, built from what the flow found out.

Pure construction, no I/O: the flow prepares them (canonical JSON, hashes) before the chain
lock, adds the answer's hash to the decision record once the answer text exists, and writes
them with the application's row in one transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from audit import Entry, digest_source_answer, mask_mobile, mask_name
from datasources.outcome import GatherResult
from scoring.engine import Decisions
from scoring.spec import FeatureSpec
from scoring.unknown import unknown_features
from service.auth import Principal
from service.retries import Attempt


@dataclass(frozen=True, slots=True)
class DecisionRecords:
    """What one decision leaves behind, before it is prepared and written."""

    entries: list[Entry]        # application.received (or .retried), then source.fetched
    decision: dict[str, Any]    # the decision.made payload, still without the answer's hash
    explanation: dict[str, Any] | None
    details: dict[str, Any]


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def build_records(*, principal: Principal, application_id: str, subject: str, applicant: dict,
                  consent, facts: dict, gathered: GatherResult, decisions: Decisions | None,
                  row: dict | None, answer: dict, spec: FeatureSpec,
                  attempt: Attempt | None) -> DecisionRecords:
    """Build the decision's audit entries, its decision record, explanation and details."""
    sources = {scope: {"status": o.status, "latency_ms": round(o.latency_ms, 3),
                       "attempts": o.attempts, "error": o.error}
               for scope, o in gathered.outcomes.items()}
    consent_ref = {"consent_id": consent.consent_id, "consent_digest": consent.digest()}
    received = "application.received" if attempt is None else "application.retried"
    entries = [Entry(received, {
        "application_id": application_id, "subject": subject, "channel": principal.name,
        **(attempt.link if attempt is not None else {}),
        "applicant": {"name": mask_name(applicant["name"]),
                      "mobile": mask_mobile(applicant["mobile"])},
        "request": {k: facts[k] for k in ("amount", "term_months", "purpose")},
        "age": facts["age"], **consent_ref}, application_id, principal.actor)]
    for scope, outcome in gathered.outcomes.items():
        entries.append(Entry("source.fetched", {
            "application_id": application_id, "subject": subject, "scope": scope,
            "status": outcome.status, "attempts": outcome.attempts,
            "latency_ms": round(outcome.latency_ms, 3), "error": outcome.error,
            "consent_id": outcome.consent_id, "consent_digest": outcome.consent_digest,
            "answer_digest": (digest_source_answer(outcome.record.to_dict())
                              if outcome.record is not None else None),
        }, application_id, principal.actor))
    explanation = None
    decision_payload: dict[str, Any] = {
        "application_id": application_id, "subject": subject, "outcome": answer["status"],
        "decided_by": "model", "facts": facts, "sources": sources, **consent_ref,
        "missing_sources": answer["missing_sources"],
        "missing_reasons": gathered.missing_reasons or (
            [] if decisions is not None
            else [f"no model decides without {', '.join(gathered.unknown_scopes)}"]),
        "unknown_sources": list(gathered.unknown_scopes),
        # A decided row names its model's unknown features; a deferral derives them here.
        "unknown_features": (row["unknown_features"] if row is not None else
                             list(unknown_features(spec, gathered.unknown_scopes).unknown)),
    }
    if decisions is not None and row is not None:
        model = decisions.model
        names = model.feature_names
        values = model.select(decisions.features)[0]
        contribs = decisions.scored.contributions[0]
        features = {n: _finite(values[j]) for j, n in enumerate(names)}
        contributions = {n: float(contribs[j]) for j, n in enumerate(names)}
        decision_payload.update({
            "model_version": model.version, "model_sha256": model.sha256,
            "policy_version": row["policy_version"], "policy_digest": row["policy_digest"],
            "reason_codes": [r["code"] for r in row["reasons"]],
            "decision": {k: row[k] for k in ("outcome", "credit_limit", "annual_rate",
                                             "terms_months", "score", "grade", "pd",
                                             "rules_fired", "undetermined_rules")},
            "undetermined_rules": row["undetermined_rules"],
            "unknown_features": row["unknown_features"],
            "partial_features": row["partial_features"],
            "reasons": row["reasons"], "features": features,
            "contributions": contributions, "base_value": row["base_value"],
            "margin": row["margin"],
        })
        spec = model.spec
        explanation = {
            "application_id": application_id, "model_version": model.version,
            "model_sha256": model.sha256, "policy_version": row["policy_version"],
            "outcome": row["outcome"], "base_value": row["base_value"],
            "margin": row["margin"], "pd": row["pd"], "score": row["score"],
            "grade": row["grade"], "rules_fired": row["rules_fired"],
            "undetermined_rules": row["undetermined_rules"],
            "unknown_sources": row["unknown_sources"],
            "unknown_features": row["unknown_features"],
            "partial_features": row["partial_features"],
            "features": [{"name": n, "group": spec.by_name(n).group, "value": features[n],
                          "contribution": contributions[n]} for n in names],
            "reasons": row["reasons"],
        }
    if attempt is not None:
        decision_payload.update(attempt.link)
    details = {"sources": sources, "facts": facts, "missing_reasons": gathered.missing_reasons,
               "consent_id": consent.consent_id}
    return DecisionRecords(entries, decision_payload, explanation, details)
