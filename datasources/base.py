"""The one interface every source adapter implements, and the typed empty answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from datasources import SCOPES
from datasources.identity import NationalId
from datasources.records import (
    CourtRecord,
    CreditReportRecord,
    IncomeTaxRecord,
    ProvidentFundRecord,
    SocialSecurityRecord,
    SourceRecord,
)

# Scopes whose answers describe income: at least two must answer for a decision.
INCOME_SCOPES = ("provident_fund", "social_security", "income_tax")
# Scopes that must always answer for a decision.
REQUIRED_SCOPES = ("credit_report", "court_records")

_EMPTY: dict[str, Callable[[], SourceRecord]] = {
    "provident_fund": ProvidentFundRecord.no_account,
    "social_security": SocialSecurityRecord.not_enrolled,
    "income_tax": IncomeTaxRecord.no_record,
    "credit_report": CreditReportRecord.no_record,
    "court_records": CourtRecord.clean,
}


@runtime_checkable
class Source(Protocol):
    """One government or bureau source, answering for one scope.

    ``fetch`` returns the person's typed record (possibly the typed empty answer) within
    ``timeout`` seconds, or raises a :class:`~datasources.errors.SourceError`. It never sees
    the consent: the gatherer asks the consent gate before every call.

    An adapter may also set ``blocking = False`` when ``fetch`` answers from memory without
    waiting on the network or the clock: the gatherer then calls it in the gathering thread
    instead of handing it to the pool (see :func:`is_blocking`). Its retries, if it fails,
    pause in that thread too, so a source that can fail retryably should stay blocking.
    """

    scope: str

    def fetch(self, national_id: NationalId | str, *, timeout: float) -> SourceRecord:
        """Return this source's record of the person with ``national_id`` (parsed or not)."""
        ...


def is_blocking(source: Source) -> bool:
    """Return whether ``fetch`` of ``source`` may wait (network, sleep); True unless it says not."""
    return getattr(source, "blocking", True) is not False


def empty_record(scope: str) -> SourceRecord:
    """Return the typed "no account / no record" answer of ``scope``."""
    check_scope(scope)
    return _EMPTY[scope]()


def check_scope(scope: object) -> str:
    """Return ``scope`` if it names a source, else raise ValueError."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    return scope
