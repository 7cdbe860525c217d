"""Documents kept outside the log, checked against the SHA-256 that the log records for them.

A caller keeps a text per application elsewhere (the service: the answer it returned) and
puts its SHA-256 under a top-level ``field`` of each record that fixes that text. The text
kept must hash to the value in the application's latest record that states one: an edit, or
a return to an earlier text, is caught. The caller streams ``(application_id, text)`` pairs;
they are compared ``batch_size`` at a time, so memory stays flat.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import Engine, or_, select

from audit.queries import storable
from audit.records import DocumentCheck
from audit.schema import audit_records

__all__ = ["check_documents"]

_T = audit_records.c
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class _Tally:
    checked: int = 0
    unhashed: int = 0
    purged: int = 0
    failed: int = 0
    first: tuple[str, int | None, str, str] | None = field(default=None)

    def fail(self, application_id: str, seq: int | None, reason: str, message: str) -> None:
        self.failed += 1
        if self.first is None:
            self.first = (application_id, seq, reason, message)


@dataclass(frozen=True, slots=True)
class _Stated:
    seq: int
    digest: str | None  # None: the record was purged
    intact: bool


def check_documents(
    engine: Engine,
    documents: Iterable[tuple[str, str]],
    *,
    field: str,
    what: str,
    batch_size: int,
) -> DocumentCheck:
    """Compare each document's SHA-256 with the latest one its application's records state."""
    tally = _Tally()
    for chunk in _chunks(iter(documents), batch_size):
        ids = [application_id for application_id, _ in chunk if storable(application_id)]
        stated, recorded = _stated(engine, ids, field)
        for application_id, text in chunk:
            _compare(tally, application_id, text, stated.get(application_id),
                     application_id in recorded, field, what)
    if tally.first is not None:
        application_id, seq, reason, message = tally.first
        if tally.failed > 1:
            message += f" ({tally.failed - 1} more {what}s fail too)"
        return DocumentCheck(False, tally.checked, tally.unhashed, tally.purged, tally.failed,
                             application_id, seq, reason, message)
    message = f"{tally.checked} {what}{'' if tally.checked == 1 else 's'} match their records"
    return DocumentCheck(True, tally.checked, tally.unhashed, tally.purged, message=message)


def _compare(tally: _Tally, application_id: str, text: str, stated: _Stated | None,
             recorded: bool, field: str, what: str) -> None:
    if stated is None:
        if recorded:
            tally.unhashed += 1  # recorded before the hashes were
        else:
            tally.fail(application_id, None, "unrecorded",
                       f"application {application_id} has a {what} but no record in the log")
        return
    if stated.digest is None:
        tally.purged += 1
        return
    tally.checked += 1
    if not stated.intact:
        tally.fail(application_id, stated.seq, "record_altered",
                   f"record {stated.seq}, which states the {field} of application "
                   f"{application_id}, does not match its payload_hash")
    elif hashlib.sha256(text.encode("utf-8")).hexdigest() != stated.digest:
        tally.fail(application_id, stated.seq, "altered",
                   f"the {what} of application {application_id} does not match the {field} "
                   f"of record {stated.seq}: it was changed after it was recorded")


def _stated(engine: Engine, ids: list[str], name: str) -> tuple[dict[str, _Stated], set[str]]:
    """Return, per application, its latest record stating ``name`` (or purged), and the set of
    applications that have any record at all."""
    if not ids:
        return {}, set()
    marker = f'%"{name}":%'  # a cheap first filter; the payload is parsed to be sure
    candidates = (
        select(_T.seq, _T.application_id, _T.payload, _T.payload_hash)
        .where(_T.application_id.in_(ids), or_(_T.payload.is_(None), _T.payload.like(marker)))
        .order_by(_T.seq)
    )
    present = select(_T.application_id).where(_T.application_id.in_(ids)).distinct()
    latest: dict[str, _Stated] = {}
    with engine.connect() as conn:
        for seq, application_id, payload, payload_hash in conn.execute(candidates):
            if payload is None:
                latest[application_id] = _Stated(seq, None, True)
                continue
            digest = _digest_in(payload, name)
            if digest is not None:
                intact = hashlib.sha256(payload.encode("utf-8")).hexdigest() == payload_hash
                latest[application_id] = _Stated(seq, digest, intact)
        recorded = set(conn.execute(present).scalars())
    return latest, recorded


def _digest_in(payload: str, name: str) -> str | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) and _HEX64.fullmatch(value) else None


def _chunks(items: Iterator[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    while chunk := list(islice(items, size)):
        yield chunk
