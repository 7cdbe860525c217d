"""The domain's errors: what the flow and its collaborators raise when a request cannot be met.

They speak of consents, applications, reviews, decisions and loans, never of HTTP: one table in
:mod:`service.web.errors` turns each class into a status and the error envelope. A message is
safe to show the client; ``code`` is the stable, machine-readable name of the failure;
``fields`` names the inputs at fault, each with its messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class DomainError(Exception):
    """A request the domain refuses; the message is safe to show the client."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, fields: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, list[str]] = {name: list(messages)
                                             for name, messages in (fields or {}).items()}


# -- what is not there -------------------------------------------------------------------------

class NotFound(DomainError):
    """No such consent, application or review; or one the caller may not see."""

    code = "not_found"


class RecordPurged(NotFound):
    """The decision record was purged under the retention policy, and what it held with it."""

    code = "purged"


class NotScored(NotFound):
    """The application was deferred before it was scored: it has no explanation."""

    code = "not_scored"


# -- what the request says ---------------------------------------------------------------------

class InvalidInput(DomainError):
    """A value of the request is not acceptable (beyond its schema): ``fields`` names it."""

    code = "invalid"


class ConsentInvalid(DomainError):
    """The consent cited is not this channel's, not this applicant's, or not live."""

    code = "consent_invalid"


class ConsentInsufficient(DomainError):
    """The consent cited does not cover every source the policy needs."""

    code = "consent_insufficient"


class ApplicantMismatch(DomainError):
    """The applicant resent is not the one the application was made for."""

    code = "applicant_mismatch"


# -- what the state allows ---------------------------------------------------------------------

class IdempotencyConflict(DomainError):
    """The Idempotency-Key was used before with another body."""

    code = "conflict"


class InProgress(DomainError):
    """A request with this Idempotency-Key is still deciding, or took this one's claim over."""

    code = "in_progress"


class ReviewConflict(DomainError):
    """The review or its application is not in a state that allows the step asked for."""

    code = "conflict"


class NotReviewable(DomainError):
    """A deferred application has no decision to review: it is retried instead."""

    code = "deferred"


class NotRetryable(DomainError):
    """The application cannot be decided again: its decision record is not available."""

    code = "not_retryable"


class OutcomeConflict(DomainError):
    """The outcome posted contradicts the loan's history (undrawn, with months recorded)."""

    code = "conflict"


# -- what could not be recorded ----------------------------------------------------------------

class DecisionWithheld(DomainError):
    """The decision could not be recorded, so none was issued."""

    code = "audit_unavailable"


class DecisionOutcomeUnknown(DomainError):
    """Whether the decision was recorded cannot be told yet."""

    code = "outcome_unknown"
