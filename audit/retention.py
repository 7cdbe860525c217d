"""Retention: payloads past the retention period are set to NULL; the chain stays whole.

The chain covers ``payload_hash``, not the payload, so removing a payload breaks no link.
The purge runs under the chain lock and, in the same transaction, first appends a
``records.purged`` record naming the cut-off, the range, the count and the retention period,
then sets the payloads to NULL. The database's guard lets a payload be set to NULL only while
the chain's head is such a record covering it (its seq in the range, recorded before the
cut-off, the cut-off at least the retention period before the purge), and verify reports
every NULL payload that no purge record covers (:class:`PurgeCoverage`).

Kept on purpose: the hashes, the record's kind, time, application and actor, and the
pseudonymised index columns (subject, outcome, model version, reason codes), which hold no
clear personal data and let auditors still count and find decisions; and the payloads of
earlier ``records.purged`` records, which are the trail of the purges themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, and_, func, select, update

from audit.canonical import format_time
from audit.errors import PurgeRefused
from audit.records import PurgeResult
from audit.schema import audit_records

if TYPE_CHECKING:
    from audit.chain_access import ChainAccess

__all__ = ["PURGED_KIND", "PurgeCoverage", "purge_payloads", "years_before"]

PURGED_KIND = "records.purged"
_T = audit_records.c


def years_before(moment: datetime, years: int) -> datetime:
    """Return the same calendar moment ``years`` earlier (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def purge_payloads(
    store: ChainAccess, before: datetime, actor: str, retention_years: int
) -> PurgeResult:
    """Set to NULL the payloads of records older than ``before``; append the purge record."""
    if (
        isinstance(retention_years, bool)
        or not isinstance(retention_years, int)
        or retention_years < 0
    ):
        raise ValueError(f"retention_years must be a whole number >= 0; got {retention_years!r}")
    if not isinstance(actor, str) or not actor:
        raise ValueError(f"actor must name who purges, like 'system:cli'; got {actor!r}")
    cutoff_text = format_time(before, what="before")
    limit = years_before(store.now(), retention_years)
    if before > limit:
        raise PurgeRefused(
            f"before must be on or before {format_time(limit)} (now minus the retention "
            f"period of {retention_years} years); got {cutoff_text}"
        )
    condition = and_(_T.recorded_at < cutoff_text, _T.payload.is_not(None), _T.kind != PURGED_KIND)
    with store.writer() as writer:
        conn = writer.connection
        first, last, count = conn.execute(
            select(func.min(_T.seq), func.max(_T.seq), func.count()).where(condition)
        ).one()
        # The record comes first: the guard lets a payload go only under a purge record at
        # the head of the chain that names it.
        record = writer.append(
            PURGED_KIND,
            {
                "before": cutoff_text,
                "purged": count,
                "first_seq": first,
                "last_seq": last,
                "retention_years": retention_years,
            },
            actor=actor,
        )
        if count:
            conn.execute(
                update(audit_records)
                .where(condition, _T.seq.between(first, last))
                .values(payload=None)
            )
    return PurgeResult(purged=count, first_seq=first, last_seq=last, before=before, record=record)


def shift_years(stamp: str, years: int) -> str:
    """Return a canonical time text ``years`` earlier, by its year digits alone.

    The database guards compute the same text; on 29 February it gives a date that does not
    exist but sorts between the 28th and 1 March, a day more lenient than :func:`years_before`.
    """
    return f"{int(stamp[:4]) - years:04d}{stamp[4:]}"


@dataclass(frozen=True, slots=True)
class _Purge:
    seq: int
    first_seq: int
    last_seq: int
    before: str


class PurgeCoverage:
    """Which NULL payloads the chain's ``records.purged`` records account for.

    A purge covers a record if the purge comes after it, names its seq in its range, the
    record was recorded before the purge's cut-off and is not itself a purge record, and the
    cut-off lies at least the stated retention period before the purge was recorded. A purge
    record whose payload is gone, does not match its hash or lacks these facts covers nothing.
    Ask :meth:`covers` in ascending seq order: it keeps only the purges that can still apply.
    """

    def __init__(self, purges: list[_Purge]) -> None:
        self._purges = sorted(purges, key=lambda purge: purge.first_seq)
        self._next = 0
        self._active: list[_Purge] = []

    @classmethod
    def load(cls, engine: Engine) -> PurgeCoverage:
        """Read every purge record of the chain (one per purge run)."""
        statement = select(_T.seq, _T.recorded_at, _T.payload, _T.payload_hash).where(
            _T.kind == PURGED_KIND, _T.payload.is_not(None)
        )
        with engine.connect() as conn:
            rows = conn.execute(statement).all()
        purges = [purge for row in rows if (purge := _purge_of(*row)) is not None]
        return cls(purges)

    def covers(self, seq: int, kind: str, recorded_at: str) -> bool:
        """Return whether a purge accounts for the NULL payload of record ``seq``."""
        if kind == PURGED_KIND:
            return False
        purges = self._purges
        while self._next < len(purges) and purges[self._next].first_seq <= seq:
            self._active.append(purges[self._next])
            self._next += 1
        self._active = [purge for purge in self._active if purge.last_seq >= seq]
        return any(purge.seq > seq and recorded_at < purge.before for purge in self._active)


def _purge_of(seq: int, recorded_at: str, payload: str, payload_hash: str) -> _Purge | None:
    if hashlib.sha256(payload.encode("utf-8")).hexdigest() != payload_hash:
        return None  # an altered purge record vouches for nothing; the walk reports it
    try:
        facts = json.loads(payload)
        first, last = facts["first_seq"], facts["last_seq"]
        before, years = facts["before"], facts["retention_years"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (
        all(isinstance(n, int) and not isinstance(n, bool) for n in (first, last, years))
        and isinstance(before, str)
        and before <= shift_years(recorded_at, years)
    ):
        return None
    return _Purge(seq, first, last, before)
