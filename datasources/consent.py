"""The consent model and the gate every source query passes before any I/O (DESIGN §1 step 2).

The consent rule is stated once, in :meth:`Consent.check_for`: a consent allows a query or an
application only if it is this channel's, this applicant's, for a credit application, live at
the moment asked, and covers the scopes asked for. The gate asks it for each source call, one
scope at a time; the decision flow asks it for the application, with every scope the policy
needs. A refusal says which part failed (:class:`ConsentRefused`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from canonical import digest
from datasources import SCOPES
from datasources.errors import ConsentMissing

PURPOSE = "credit_application"

# Fields that define what the person agreed to. ``withdrawn_at`` is left out of the digest on
# purpose: withdrawal is a later event, and a decision's recorded digest must still verify
# against the stored consent after the person withdraws it.
_DIGEST_FIELDS = ("consent_id", "subject", "scopes", "purpose", "granted_at", "expires_at",
                  "text_version", "channel")


# Why a consent refuses: stable codes for metrics, the audit log and the flow's answer.
OTHER_CHANNEL = "other_channel"
OTHER_SUBJECT = "other_subject"
OTHER_PURPOSE = "other_purpose"
WITHDRAWN = "withdrawn"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
SCOPE_NOT_COVERED = "scope_not_covered"
# A consent's state at a moment: live, or the reason it is not.
LIVE = "live"
_NOT_LIVE = {WITHDRAWN: "consent was withdrawn", NOT_YET_VALID: "consent is not yet in force",
             EXPIRED: "consent has expired"}


class ConsentRefused(Exception):
    """The consent does not allow what was asked; ``why`` names the part of the rule that failed.

    ``detail`` says it for people (never the subject); ``missing`` lists the scopes asked for
    that the consent does not cover, in the order asked (``why`` is ``scope_not_covered``).
    """

    def __init__(self, why: str, detail: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(f"consent refused ({why}): {detail}")
        self.why = why
        self.detail = detail
        self.missing = missing


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime; got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; got naive {value.isoformat()}")
    return value.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """Return a UTC ISO 8601 timestamp ending in ``Z`` (microseconds kept when present)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp with a zone (``Z`` or an offset) into UTC."""
    parsed = datetime.fromisoformat(value)
    return _utc(parsed, "timestamp")


@dataclass(frozen=True, slots=True)
class Consent:
    """One person's consent to query some sources for one purpose, for a while."""

    consent_id: str
    subject: str  # the pseudonymised national ID (a keyed HMAC), never the ID itself
    scopes: frozenset[str]
    purpose: str
    granted_at: datetime
    expires_at: datetime
    text_version: str
    channel: str
    withdrawn_at: datetime | None = None
    # The digest of the terms, computed once: every source query of a gathering cites it.
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("consent_id", "subject", "purpose", "text_version", "channel"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"consent {name} must be a non-empty string; got {value!r}")
        if isinstance(self.scopes, str) or not isinstance(self.scopes, Iterable):
            raise ValueError(f"consent scopes must be a set of scope names; got {self.scopes!r}")
        scopes = frozenset(self.scopes)
        unknown = sorted(scopes - set(SCOPES))
        if not scopes or unknown:
            raise ValueError(f"consent scopes must be a non-empty subset of {', '.join(SCOPES)}; "
                             f"got {sorted(scopes)!r}")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "granted_at", _utc(self.granted_at, "consent granted_at"))
        object.__setattr__(self, "expires_at", _utc(self.expires_at, "consent expires_at"))
        if self.expires_at <= self.granted_at:
            raise ValueError("consent expires_at must be after granted_at; got "
                             f"{iso_utc(self.expires_at)} <= {iso_utc(self.granted_at)}")
        if self.withdrawn_at is not None:
            object.__setattr__(self, "withdrawn_at",
                               _utc(self.withdrawn_at, "consent withdrawn_at"))

    def state_at(self, at: datetime) -> str:
        """Return ``live``, or why the consent is not in force at ``at``: ``withdrawn`` (from
        the moment of withdrawal), ``not_yet_valid`` (before ``granted_at``) or ``expired``
        (from ``expires_at`` on)."""
        at = _utc(at, "at")
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return WITHDRAWN
        if at < self.granted_at:
            return NOT_YET_VALID
        if at >= self.expires_at:
            return EXPIRED
        return LIVE

    def is_live(self, at: datetime) -> bool:
        """Return whether the consent is in force at ``at`` (granted, unexpired, not withdrawn)."""
        return self.state_at(at) == LIVE

    def covers(self, scope: str, at: datetime) -> bool:
        """Return whether the consent is live at ``at`` and names ``scope``."""
        return scope in self.scopes and self.is_live(at)

    def check_for(self, *, subject: str, channel: str | None, scopes: Iterable[str],
                  now: datetime) -> None:
        """Raise ConsentRefused unless the consent allows querying ``scopes`` now.

        Parameters
        ----------
        subject
            The pseudonymised national ID of the applicant the query is for.
        channel
            The channel asking; it must be the one that recorded the consent. None only
            where no channel acts (the source tools and benchmarks).
        scopes
            Every scope asked for: one for a source call, all the policy needs for an
            application. Each must be covered.
        now
            The moment of the query: the consent must be live then.

        The parts are checked in this order, so that a consent of another channel is
        refused as such before anything about it is told: channel, applicant, purpose,
        liveness, scopes.
        """
        if channel is not None and self.channel != channel:
            raise ConsentRefused(OTHER_CHANNEL, "consent was made by another channel")
        if not hmac.compare_digest(self.subject.encode(), subject.encode()):
            raise ConsentRefused(OTHER_SUBJECT, "consent belongs to another person")
        if self.purpose != PURPOSE:
            raise ConsentRefused(OTHER_PURPOSE,
                                 f"consent purpose must be {PURPOSE}; got {self.purpose!r}")
        state = self.state_at(now)
        if state != LIVE:
            raise ConsentRefused(state, _NOT_LIVE[state])
        missing = tuple(dict.fromkeys(s for s in scopes if s not in self.scopes))
        if missing:
            raise ConsentRefused(SCOPE_NOT_COVERED,
                                 f"consent does not cover {', '.join(missing)}", missing=missing)

    def withdraw(self, at: datetime) -> Consent:
        """Return this consent withdrawn at ``at`` (an earlier withdrawal stands)."""
        if self.withdrawn_at is not None:
            return self
        return Consent(**{**self._values(), "withdrawn_at": _utc(at, "withdrawn_at")})

    def to_dict(self) -> dict[str, Any]:
        """Return the consent as JSON-ready values (sorted scopes, UTC ``Z`` timestamps)."""
        out: dict[str, Any] = {}
        for name, value in self._values().items():
            if isinstance(value, datetime):
                value = iso_utc(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Consent:
        """Build a consent from :meth:`to_dict` output."""
        values = dict(data)
        for name in ("granted_at", "expires_at", "withdrawn_at"):
            if isinstance(values.get(name), str):
                values[name] = parse_iso(values[name])
        values["scopes"] = frozenset(values.get("scopes", ()))
        return cls(**values)

    def digest(self) -> str:
        """Return the SHA-256 (hex) of the canonical JSON of the consent's terms."""
        if self._digest is None:
            terms = {name: value for name, value in self.to_dict().items()
                     if name in _DIGEST_FIELDS}
            terms_digest = digest(terms)
            object.__setattr__(self, "_digest", terms_digest)
            return terms_digest
        return self._digest

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}


@dataclass(frozen=True, slots=True)
class Authorisation:
    """Which consent allowed one query, and when the gate checked it."""

    consent_id: str
    consent_digest: str
    scope: str
    at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ConsentGate:
    """Refuse any source query that no live consent of this subject covers.

    The consent is looked up at every query, so a withdrawal recorded by the service stops
    every later query at once, including retries of a query already under way.
    """

    def __init__(self, lookup: Callable[[str], Consent | None], *,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._lookup = lookup
        self._clock = clock

    def authorise(self, consent_id: str, scope: str, subject: str, *,
                  channel: str | None = None) -> Authorisation:
        """Return the authorisation for one query or raise ConsentMissing."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
        try:
            consent = self._lookup(consent_id)
        except Exception as exc:  # fail closed: an unknown consent state allows nothing
            raise ConsentMissing(scope, "lookup_failed",
                                 f"consent lookup failed ({type(exc).__name__})") from exc
        return self.check(consent, consent_id, scope, subject, channel=channel)

    def check(self, consent: Consent | None, consent_id: str, scope: str, subject: str, *,
              channel: str | None = None) -> Authorisation:
        """Authorise one query against a consent already read (now, by the caller)."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
        if consent is None:
            raise ConsentMissing(scope, "no_consent", "no consent with this id")
        if consent.consent_id != consent_id:
            raise ConsentMissing(scope, "no_consent", "lookup returned another consent")
        now = self._clock()
        try:
            consent.check_for(subject=subject, channel=channel, scopes=(scope,), now=now)
        except ConsentRefused as refused:
            raise ConsentMissing(scope, refused.why, refused.detail) from refused
        return Authorisation(consent.consent_id, consent.digest(), scope, now)
