"""The package's own errors: every failure of a source query is one of these.

Messages are safe to log and to show to an operator: they name the source and what went
wrong, never the national ID or any part of an answer.
"""

from __future__ import annotations


class SourceError(Exception):
    """A source query failed; ``retryable`` says whether trying again may help."""

    default_retryable = True

    def __init__(self, scope: str, reason: str, *, retryable: bool | None = None) -> None:
        self.scope = scope
        self.reason = reason
        self.retryable = self.default_retryable if retryable is None else retryable
        super().__init__(f"{scope}: {reason}")


class SourceUnavailable(SourceError):
    """The source could not be reached or answered with a server error."""


class SourceTimeout(SourceError):
    """The source did not answer within the call's timeout."""


class SourceMalformed(SourceError):
    """The source answered, but the answer is not a valid record."""

    default_retryable = False


class ConsentMissing(SourceError):
    """No live consent covers this query; the source was not contacted."""

    default_retryable = False

    def __init__(self, scope: str, why: str, detail: str) -> None:
        # ``why`` is a stable code for metrics and audit; ``detail`` is for people.
        self.why = why
        super().__init__(scope, f"consent refused ({why}): {detail}", retryable=False)


class CircuitOpen(SourceError):
    """The source's circuit breaker is open; the call failed fast without I/O."""

    default_retryable = False


def error_for_status(scope: str, status: int) -> SourceError:
    """Return the error for an HTTP status other than success."""
    if status >= 500:
        # 501 means the endpoint does not exist there: asking again will not help.
        return SourceUnavailable(scope, f"source answered HTTP {status}",
                                 retryable=status != 501)
    if status in (408, 429):
        return SourceUnavailable(scope, f"source answered HTTP {status}", retryable=True)
    if 400 <= status < 500:
        return SourceUnavailable(scope, f"source rejected the query with HTTP {status}",
                                 retryable=False)
    return SourceMalformed(scope, f"source answered with unexpected HTTP {status}")
