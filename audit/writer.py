"""Appending to the chain inside one write transaction that holds the chain lock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection

from audit.canonical import canonical_form, format_time, sha256_hex
from audit.queries import storable
from audit.records import AuditRecord, compute_record_hash
from audit.schema import audit_reason_codes, audit_records

__all__ = ["ChainWriter", "Entry", "Prepared", "prepare"]

_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_INSERT_RECORDS = audit_records.insert()
_INSERT_CODES = audit_reason_codes.insert()


class Entry(NamedTuple):
    """One record to append, for :meth:`ChainWriter.append_many`."""

    kind: str
    payload: Mapping[str, Any]
    application_id: str | None = None
    actor: str | None = None
    recorded_at: datetime | None = None


class ChainWriter:
    """Append records after the chain head; made by ``AuditStore.writer()`` only.

    ``connection`` is the transaction's connection: rows written through it commit or roll
    back together with the records.
    """

    def __init__(
        self,
        connection: Connection,
        head_seq: int,
        head_hash: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._connection = connection
        self._seq = head_seq
        self._hash = head_hash
        self._clock = clock

    @property
    def connection(self) -> Connection:
        """The SQLAlchemy connection of the write transaction."""
        return self._connection

    @property
    def head_seq(self) -> int:
        """The seq of the last record of the chain as this transaction sees it (0 if none)."""
        return self._seq

    @property
    def head_hash(self) -> str:
        """The record hash of that last record (the genesis value if there is none)."""
        return self._hash

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        application_id: str | None = None,
        actor: str | None = None,
        recorded_at: datetime | None = None,
    ) -> AuditRecord:
        """Append one record and return it as stored."""
        return self.append_many([Entry(kind, payload, application_id, actor, recorded_at)])[0]

    def append_many(self, entries: Iterable[Entry | Prepared]) -> list[AuditRecord]:
        """Append records in order with one round trip per table; return them as stored.

        Entries may come already prepared (:func:`prepare`), so that their canonical form is built
        before the chain lock is taken; only the chaining happens here.
        """
        rows: list[dict[str, Any]] = []
        codes: list[dict[str, Any]] = []
        records: list[AuditRecord] = []
        seq, prev_hash = self._seq, self._hash
        for entry in entries:
            seq += 1
            ready = entry if isinstance(entry, Prepared) else prepare(entry)
            row, record = _chain(ready, seq, prev_hash, self._clock)
            rows.append(row)
            records.append(record)
            codes.extend({"seq": seq, "code": code} for code in ready.reason_codes)
            prev_hash = record.record_hash
        if not rows:
            return []
        self._connection.execute(_INSERT_RECORDS, rows)
        if codes:
            self._connection.execute(_INSERT_CODES, codes)
        self._seq, self._hash = seq, prev_hash
        return records


class Prepared(NamedTuple):
    """An entry checked and in canonical form, ready to be chained: see :func:`prepare`."""

    kind: str
    body: dict[str, Any]
    payload_text: str
    payload_hash: str
    application_id: str | None
    actor: str | None
    recorded_at: datetime | None
    subject: str | None
    outcome: str | None
    model_version: str | None
    reason_codes: list[str]


def prepare(entry: Entry) -> Prepared:
    """Check an entry and build its canonical payload and payload hash.

    This is the costly part of an append and needs no lock: call it before the write
    transaction to keep the chain lock short. Raises ValueError for a bad entry.
    """
    kind, payload, application_id, actor, recorded_at = entry
    if not isinstance(kind, str) or len(kind) > 64 or not _KIND.fullmatch(kind):
        raise ValueError(f"kind must be dotted lower-case words like 'decision.made'; got {kind!r}")
    _check_text("application_id", application_id, 64)
    _check_text("actor", actor, 128)
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a mapping; got {type(payload).__name__}")
    if recorded_at is not None:
        format_time(recorded_at, what="recorded_at")
    body, data = canonical_form(payload)
    subject, outcome, model_version, reason_codes = _index_fields(body)
    return Prepared(kind, body, data.decode("utf-8"), sha256_hex(data), application_id, actor,
                    recorded_at, subject, outcome, model_version, reason_codes)


def _chain(
    ready: Prepared, seq: int, prev_hash: str, clock: Callable[[], datetime]
) -> tuple[dict[str, Any], AuditRecord]:
    # The time is taken here, under the chain lock, so that it never goes back along the chain.
    moment = clock() if ready.recorded_at is None else ready.recorded_at
    stamp = format_time(moment, what="recorded_at")
    record_hash = compute_record_hash(
        prev_hash, seq, ready.kind, stamp, ready.application_id, ready.actor, ready.payload_hash
    )
    row = {
        "seq": seq,
        "recorded_at": stamp,
        "kind": ready.kind,
        "application_id": ready.application_id,
        "actor": ready.actor,
        "payload": ready.payload_text,
        "payload_hash": ready.payload_hash,
        "prev_hash": prev_hash,
        "record_hash": record_hash,
        "subject": ready.subject,
        "outcome": ready.outcome,
        "model_version": ready.model_version,
    }
    record = AuditRecord(
        seq=seq,
        recorded_at=moment.astimezone(UTC),
        kind=ready.kind,
        application_id=ready.application_id,
        actor=ready.actor,
        payload=ready.body,
        payload_hash=ready.payload_hash,
        prev_hash=prev_hash,
        record_hash=record_hash,
    )
    return row, record


def _check_text(name: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        shown = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        raise ValueError(f"{name} must be a string of 1 to {limit} characters; got {shown}")
    if not storable(value):
        # Refused on SQLite too, so that a record that one database takes the other takes.
        raise ValueError(f"{name} must be text without NUL or lone surrogates; got {value!r}")


def _index_fields(body: dict[str, Any]) -> tuple[str | None, str | None, str | None, list[str]]:
    """Pick the filterable top-level fields of a payload, checking their shape."""
    subject = body.get("subject")
    if subject is not None and (not isinstance(subject, str) or not _HEX64.fullmatch(subject)):
        # Never echo it: a raw national ID here is exactly the leak this check exists for.
        raise ValueError(
            "payload subject must be a pseudonymised national ID (64 lower-case hex digits); "
            f"got a {type(subject).__name__} of {len(str(subject))} characters"
        )
    outcome = body.get("outcome")
    _check_text("payload outcome", outcome, 32)
    model_version = body.get("model_version")
    _check_text("payload model_version", model_version, 64)
    reason_codes = body.get("reason_codes")
    if reason_codes is None:
        return subject, outcome, model_version, []
    if not isinstance(reason_codes, list):
        raise ValueError(
            f"payload reason_codes must be a list of strings; got {type(reason_codes).__name__}"
        )
    for code in reason_codes:
        _check_text("payload reason_codes item", code, 64)
    return subject, outcome, model_version, list(dict.fromkeys(reason_codes))
