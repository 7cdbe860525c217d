"""Value types of the audit trail and the definition of a record's hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from audit.canonical import canonical_json, format_time, sha256_hex

__all__ = [
    "GENESIS_HASH",
    "MAX_SEQ",
    "AuditPage",
    "AuditQuery",
    "AuditRecord",
    "DocumentCheck",
    "PurgeResult",
    "VerifyResult",
    "compute_record_hash",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of record 1: there is no record before it."""

MAX_SEQ = 2**63 - 1
"""The largest sequence number a 64-bit integer column holds."""

_HASH_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compute_record_hash(
    prev_hash: str,
    seq: int,
    kind: str,
    recorded_at: str,
    application_id: str | None,
    actor: str | None,
    payload_hash: str,
) -> str:
    """Return the record hash: SHA-256 of the canonical JSON array of the chained fields."""
    # The array holds only strings, one integer and nulls, for which json's encoder with these
    # options writes exactly canonical_json(); it is used directly because verify calls this
    # once per record.
    fields = [prev_hash, seq, kind, recorded_at, application_id, actor, payload_hash]
    return hashlib.sha256(_HASH_ENCODER.encode(fields).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the chain as stored; ``payload`` is None once purged."""

    seq: int
    recorded_at: datetime
    kind: str
    application_id: str | None
    actor: str | None
    payload: dict[str, Any] | None
    payload_hash: str
    prev_hash: str
    record_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-ready values, times in the canonical form."""
        return {
            "seq": self.seq,
            "recorded_at": format_time(self.recorded_at),
            "kind": self.kind,
            "application_id": self.application_id,
            "actor": self.actor,
            "payload": self.payload,
            "payload_hash": self.payload_hash,
            "prev_hash": self.prev_hash,
            "record_hash": self.record_hash,
        }


class _Pseudonymiser(Protocol):
    def national_id(self, national_id: str) -> str: ...


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which records an auditor wants; every filter given must hold (AND).

    ``since`` is inclusive and ``until`` exclusive; ``start_seq`` and ``end_seq`` are both
    inclusive. ``subject`` is the keyed HMAC of a national ID, never the ID itself: use
    :meth:`with_national_id` to search by the ID.
    """

    since: datetime | None = None
    until: datetime | None = None
    kinds: tuple[str, ...] = field(default=())
    application_id: str | None = None
    actor: str | None = None
    subject: str | None = None
    outcome: str | None = None
    model_version: str | None = None
    reason_code: str | None = None
    start_seq: int | None = None
    end_seq: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.kinds, str):
            object.__setattr__(self, "kinds", (self.kinds,))
        else:
            object.__setattr__(self, "kinds", tuple(self.kinds))
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                format_time(value, what=name)
        for name in ("start_seq", "end_seq"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")

    def with_national_id(self, national_id: str, pseudonymiser: _Pseudonymiser) -> AuditQuery:
        """Return this query narrowed to one applicant, given the raw national ID."""
        return replace(self, subject=pseudonymiser.national_id(national_id))

    def to_dict(self) -> dict[str, Any]:
        """Return the filters as JSON-ready values (times canonical)."""
        return {
            "since": format_time(self.since) if self.since else None,
            "until": format_time(self.until) if self.until else None,
            "kinds": list(self.kinds),
            "application_id": self.application_id,
            "actor": self.actor,
            "subject": self.subject,
            "outcome": self.outcome,
            "model_version": self.model_version,
            "reason_code": self.reason_code,
            "start_seq": self.start_seq,
            "end_seq": self.end_seq,
        }

    def fingerprint(self) -> str:
        """Return a short digest of the filters, bound into pagination cursors."""
        return sha256_hex(canonical_json(self.to_dict()))[:16]


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of records and the cursor of the next page (None on the last)."""

    items: tuple[AuditRecord, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of walking the chain.

    ``reason`` is a machine-friendly code (``payload_altered``, ``payload_erased``,
    ``record_altered``, ``gap``, ``reordered``, ``fork``, ``truncated``, ``records_missing``,
    ``checkpoint_mismatch``, ``checkpoint_invalid``) and ``message`` says the same for a
    person. When a checkpoint fails, ``checkpoint_failed`` is the seq of the first that does
    and ``checkpoint_held`` that of the last one before it that still holds (None: none
    does); ``first_bad_seq`` is then the first record no holding checkpoint vouches for.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    message: str = ""
    checkpoint_held: int | None = None
    checkpoint_failed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready values."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "message": self.message,
            "checkpoint_held": self.checkpoint_held,
            "checkpoint_failed": self.checkpoint_failed,
        }


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    """The outcome of checking documents kept outside the log against the hashes it records.

    ``checked`` documents were compared with the hash of their latest record that states one;
    ``unhashed`` have records but none states a hash (made before hashes were recorded) and
    ``purged`` have their latest such record purged: neither can be checked. ``failed``
    counts documents whose text does not hash to the recorded value (``altered``) or that no
    record belongs to (``unrecorded``); the first of them is named by ``application_id``,
    ``reason`` and, for ``altered``, the ``seq`` of the record it fails.
    """

    ok: bool
    checked: int
    unhashed: int = 0
    purged: int = 0
    failed: int = 0
    application_id: str | None = None
    seq: int | None = None
    reason: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready values."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "unhashed": self.unhashed,
            "purged": self.purged,
            "failed": self.failed,
            "application_id": self.application_id,
            "seq": self.seq,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a purge removed, and the ``records.purged`` record that says so."""

    purged: int
    first_seq: int | None
    last_seq: int | None
    before: datetime
    record: AuditRecord

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready values."""
        return {
            "purged": self.purged,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "before": format_time(self.before),
            "record_seq": self.record.seq,
        }
