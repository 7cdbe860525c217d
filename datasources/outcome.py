"""What a gathering returns: per source the record or the failure, and whether it suffices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasources.base import INCOME_SCOPES, REQUIRED_SCOPES
from datasources.errors import (
    CircuitOpen,
    ConsentMissing,
    SourceError,
    SourceMalformed,
    SourceTimeout,
)
from datasources.records import SourceRecord

STATUSES = ("ok", "timeout", "unavailable", "malformed", "consent_refused", "circuit_open")
# At least this many of the income sources must answer (a typed "no account" is an answer).
MIN_INCOME_ANSWERS = 2


def status_of(error: SourceError) -> str:
    """Return the outcome status for an error."""
    if isinstance(error, ConsentMissing):
        return "consent_refused"
    if isinstance(error, CircuitOpen):
        return "circuit_open"
    if isinstance(error, SourceTimeout):
        return "timeout"
    if isinstance(error, SourceMalformed):
        return "malformed"
    return "unavailable"


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """How one source's query ended.

    ``error`` is a safe message (no personal data); ``attempts`` counts calls that reached
    the source; ``latency_ms`` runs from the start of the gathering to this outcome.
    """

    scope: str
    status: str
    record: SourceRecord | None
    error: str | None
    attempts: int
    latency_ms: float
    consent_id: str | None
    consent_digest: str | None
    # Whether a failure of this query opened the source's circuit breaker.
    opened_breaker: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return the outcome without the record, for logs, audit and metrics."""
        return {"scope": self.scope, "status": self.status, "error": self.error,
                "attempts": self.attempts, "latency_ms": round(self.latency_ms, 3),
                "consent_id": self.consent_id, "consent_digest": self.consent_digest}


def sufficiency(outcomes: dict[str, SourceOutcome]) -> list[str]:
    """Return why these outcomes cannot support a decision; empty when they can."""
    reasons = []
    for scope in REQUIRED_SCOPES:
        outcome = outcomes.get(scope)
        if outcome is None:
            reasons.append(f"{scope}: not requested")
        elif not outcome.ok:
            reasons.append(f"{scope}: {outcome.status}")
    answered = [s for s in INCOME_SCOPES if s in outcomes and outcomes[s].ok]
    if len(answered) < MIN_INCOME_ANSWERS:
        failed = ", ".join(f"{s} {outcomes[s].status if s in outcomes else 'not requested'}"
                           for s in INCOME_SCOPES if s not in answered)
        reasons.append(f"income sources: {len(answered)} of {len(INCOME_SCOPES)} answered, "
                       f"need {MIN_INCOME_ANSWERS} ({failed})")
    return reasons


@dataclass(frozen=True, slots=True)
class GatherResult:
    """Everything one gathering found out, source by source."""

    outcomes: dict[str, SourceOutcome]
    elapsed_ms: float

    @property
    def records(self) -> dict[str, SourceRecord]:
        """Return the records of the sources that answered."""
        return {s: o.record for s, o in self.outcomes.items() if o.ok and o.record is not None}

    @property
    def unknown_scopes(self) -> tuple[str, ...]:
        """Return the sources that did not answer: what they would have said is unknown.

        A typed "no account" is an answer, not unknown; a timeout, error, malformed answer,
        refusal or open breaker is.
        """
        return tuple(s for s, o in self.outcomes.items() if not o.ok)

    @property
    def missing_reasons(self) -> list[str]:
        """Return why the result is not enough to decide (empty when it is)."""
        return sufficiency(self.outcomes)

    @property
    def sufficient(self) -> bool:
        """Return whether a decision may be made: credit, court and two income sources."""
        return not self.missing_reasons

    def statuses(self) -> dict[str, str]:
        """Return each source's status."""
        return {s: o.status for s, o in self.outcomes.items()}
