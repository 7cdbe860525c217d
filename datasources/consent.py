"""The consent model and the gate every source query passes before any I/O (DESIGN §1 step 2)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from datasources import SCOPES
from datasources.errors import ConsentMissing

PURPOSE = "credit_application"

# Fields that define what the person agreed to. ``withdrawn_at`` is left out of the digest on
# purpose: withdrawal is a later event, and a decision's recorded digest must still verify
# against the stored consent after the person withdraws it.
_DIGEST_FIELDS = ("consent_id", "subject", "scopes", "purpose", "granted_at", "expires_at",
                  "text_version", "channel")


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


def canonical_json(value: Any) -> bytes:
    """Encode JSON canonically: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


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

    def is_live(self, at: datetime) -> bool:
        """Return whether the consent is in force at ``at`` (granted, unexpired, not withdrawn)."""
        at = _utc(at, "at")
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return False
        return self.granted_at <= at < self.expires_at

    def covers(self, scope: str, at: datetime) -> bool:
        """Return whether the consent is live at ``at`` and names ``scope``."""
        return scope in self.scopes and self.is_live(at)

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
            digest = hashlib.sha256(canonical_json(terms)).hexdigest()
            object.__setattr__(self, "_digest", digest)
            return digest
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
        now = self._clock()
        if consent.consent_id != consent_id:
            raise ConsentMissing(scope, "no_consent", "lookup returned another consent")
        if not hmac.compare_digest(consent.subject.encode(), subject.encode()):
            raise ConsentMissing(scope, "other_subject", "consent belongs to another person")
        if channel is not None and consent.channel != channel:
            raise ConsentMissing(scope, "other_channel", "consent was made by another channel")
        if consent.purpose != PURPOSE:
            raise ConsentMissing(scope, "other_purpose",
                                 f"consent purpose must be {PURPOSE}; got {consent.purpose!r}")
        if scope not in consent.scopes:
            raise ConsentMissing(scope, "scope_not_covered", f"consent does not cover {scope}")
        if consent.withdrawn_at is not None and consent.withdrawn_at <= now:
            raise ConsentMissing(scope, "withdrawn", "consent was withdrawn")
        if now < consent.granted_at:
            raise ConsentMissing(scope, "not_yet_valid", "consent is not yet in force")
        if now >= consent.expires_at:
            raise ConsentMissing(scope, "expired", "consent has expired")
        return Authorisation(consent.consent_id, consent.digest(), scope, now)
