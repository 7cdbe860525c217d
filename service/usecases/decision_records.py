"""The one audit record of a decision, built from what the flow found out.

A decision leaves one ``decision.made`` record: the application (pseudonymised subject, masked
applicant, facts, consent), each source's outcome (status, attempts, latency, the consent it
was called under and the digest of its answer), and the decision as scoring recorded it
(:meth:`scoring.online.engine.Decisions.record`). Its explanation is read from it; nothing of it is
stored twice. Pure construction, no I/O: the flow adds the answer's hash once the answer text
exists, then prepares and writes it with the application's row in one transaction.
"""

from __future__ import annotations

from typing import Any

from audit import digest_source_answer, mask_mobile, mask_name
from datasources.outcome import GatherResult
from scoring.online.engine import Decisions
from scoring.online.spec import FeatureSpec
from scoring.online.unknown import unknown_features
from scoring.recourse import RecourseResult
from service.domain.principal import Principal
from service.usecases.retries import Attempt

DECISION_KIND = "decision.made"


def decision_payload(*, principal: Principal, application_id: str, subject: str,
                     applicant: dict, consent, facts: dict, gathered: GatherResult,
                     decisions: Decisions | None, row: dict | None, answer: dict,
                     spec: FeatureSpec, attempt: Attempt | None,
                     recourse: RecourseResult | None = None,
                     strategy: dict[str, Any] | None = None,
                     shadows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return the payload of the decision's record, still without the answer's hash.

    ``strategy`` names the strategy that decided (name, role, model and policy versions);
    ``shadows`` holds what each shadow strategy would have decided.
    """
    sources = {}
    for scope, o in gathered.outcomes.items():
        sources[scope] = {
            "status": o.status, "attempts": o.attempts, "latency_ms": round(o.latency_ms, 3),
            "error": o.error, "consent_id": o.consent_id, "consent_digest": o.consent_digest,
            "answer_digest": (digest_source_answer(o.record.to_dict())
                              if o.record is not None else None)}
    payload: dict[str, Any] = {
        "application_id": application_id, "subject": subject, "channel": principal.name,
        "applicant": {"name": mask_name(applicant["name"]),
                      "mobile": mask_mobile(applicant["mobile"])},
        "consent_id": consent.consent_id, "consent_digest": consent.digest(),
        "sources": sources, "decided_by": "model",
        "missing_sources": answer["missing_sources"],
        "missing_reasons": gathered.missing_reasons or (
            [] if decisions is not None
            else [f"no model decides without {', '.join(gathered.unknown_scopes)}"]),
        "unknown_sources": list(gathered.unknown_scopes),
    }
    if decisions is not None and row is not None:
        payload.update(decisions.record(0, row))
        # What would lead to approval, found and checked at decision time.
        payload["recourse"] = recourse.to_dict() if recourse is not None else None
    else:
        payload["unknown_features"] = list(unknown_features(spec,
                                                           gathered.unknown_scopes).unknown)
    if strategy is not None:
        payload["strategy"] = strategy
        payload["shadows"] = list(shadows or [])
    # The application's own facts, the requested amount among them, over scoring's copy.
    payload["facts"] = facts
    payload["outcome"] = answer["status"]
    if attempt is not None:
        payload.update(attempt.link)
    return payload
