"""Retention: payloads past the retention period are set to NULL; the chain stays whole.

The chain covers ``payload_hash``, not the payload, so removing a payload breaks no link.
The purge runs under the chain lock and appends a ``records.purged`` record naming the cut-off,
the range and the count in the same transaction. Kept on purpose: the hashes, the record's
kind, time, application and actor, and the pseudonymised index columns (subject, outcome,
model version, reason codes), which hold no clear personal data and let auditors still count
and find decisions; and the payloads of earlier ``records.purged`` records, which are the
trail of the purges themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, select, update

from audit.canonical import format_time
from audit.errors import PurgeRefused
from audit.records import PurgeResult
from audit.schema import audit_records

if TYPE_CHECKING:
    from audit.store import AuditStore

__all__ = ["PURGED_KIND", "purge_payloads", "years_before"]

PURGED_KIND = "records.purged"
_T = audit_records.c


def years_before(moment: datetime, years: int) -> datetime:
    """Return the same calendar moment ``years`` earlier (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def purge_payloads(
    store: AuditStore, before: datetime, actor: str, retention_years: int
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
        if count:
            conn.execute(update(audit_records).where(condition).values(payload=None))
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
    return PurgeResult(purged=count, first_seq=first, last_seq=last, before=before, record=record)
