"""The one audit record of a decision, built from what the flow found out (:class:`DecisionMade`).

A decision leaves one ``decision.made`` record: the application (pseudonymised subject, masked
applicant, facts, consent), each source's outcome (status, attempts, latency, the consent it
was called under and the digest of its answer), and the decision as scoring recorded it
(:meth:`scoring.online.engine.Decisions.record`). Its explanation is read from it; nothing of it is
stored twice. Pure construction, no I/O: the flow adds the answer's hash once the answer text
exists, then prepares and writes it with the application's row in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audit import digest_source_answer, mask_mobile, mask_name
from datasources.consent import Consent
from datasources.outcome import GatherResult
from scoring.governance.drift import DriftReference
from scoring.online.engine import Decisions
from scoring.online.spec import FeatureSpec
from scoring.online.unknown import unknown_features
from scoring.recourse import RecourseResult
from service.domain.principal import Principal
from service.usecases.attempts import Attempt
from service.usecases.monitoring.groups import Groups

DECISION_KIND = "decision.made"


@dataclass(frozen=True, slots=True)
class DecisionMade:
    """Everything one decision found out, from the consent to the answer.

    The flow builds it once the answer is made; the decision's record (:func:`decision_payload`),
    the application's row and the monitoring cells are built from it.
    """

    principal: Principal             # the channel that applied
    application_id: str
    subject: str                     # the applicant's pseudonymised national ID
    applicant: dict[str, Any]        # as the channel sent it: national ID, name, mobile
    consent: Consent                 # the consent the sources were asked under
    facts: dict[str, Any]            # the application's own: age, amount, term, purpose
    gathered: GatherResult           # each source's outcome
    decisions: Decisions | None      # the scoring; None when the application was deferred
    row: dict[str, Any] | None       # the applicant's row of ``decisions``
    answer: dict[str, Any]           # the answer, still without its elapsed time
    spec: FeatureSpec                # the deciding model's features
    attempt: Attempt | None          # a retry's attempt; None for a first decision
    recourse: RecourseResult | None  # what would lead to approval, if it was sought
    strategy: dict[str, Any] | None  # the strategy that decided, as the record names it
    shadows: list[dict[str, Any]]    # what each shadow strategy would have decided
    groups: Groups | None            # the applicant's groups, for the fairness monitoring
    # Every live model's training distributions, by version: the monitoring bins by them.
    references: Mapping[str, DriftReference | None]

    @property
    def status(self) -> str:
        """The answer's status: approved, declined, offered or deferred."""
        return str(self.answer["status"])

    @property
    def opened_breakers(self) -> list[str]:
        """The sources whose circuit breaker this decision's gathering opened."""
        return [scope for scope, o in self.gathered.outcomes.items() if o.opened_breaker]


def decision_payload(made: DecisionMade) -> dict[str, Any]:
    """Return the payload of the decision's record, still without the answer's hash.

    It names the strategy that decided (name, role, model and policy versions), when known,
    and what each shadow strategy would have decided.
    """
    gathered, decisions, row, answer = made.gathered, made.decisions, made.row, made.answer
    sources = {}
    for scope, o in gathered.outcomes.items():
        sources[scope] = {
            "status": o.status, "attempts": o.attempts, "latency_ms": round(o.latency_ms, 3),
            "error": o.error, "consent_id": o.consent_id, "consent_digest": o.consent_digest,
            "answer_digest": (digest_source_answer(o.record.to_dict())
                              if o.record is not None else None)}
    payload: dict[str, Any] = {
        "application_id": made.application_id, "subject": made.subject,
        "channel": made.principal.name,
        "applicant": {"name": mask_name(made.applicant["name"]),
                      "mobile": mask_mobile(made.applicant["mobile"])},
        "consent_id": made.consent.consent_id, "consent_digest": made.consent.digest(),
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
        payload["recourse"] = made.recourse.to_dict() if made.recourse is not None else None
    else:
        payload["unknown_features"] = list(unknown_features(made.spec,
                                                           gathered.unknown_scopes).unknown)
    if made.strategy is not None:
        payload["strategy"] = made.strategy
        payload["shadows"] = list(made.shadows)
    # The application's own facts, the requested amount among them, over scoring's copy.
    payload["facts"] = made.facts
    payload["outcome"] = answer["status"]
    if made.attempt is not None:
        payload.update(made.attempt.link)
    return payload
