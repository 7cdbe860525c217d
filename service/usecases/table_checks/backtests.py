"""Checking ``backtests`` against the records of each job: its request and its ending.

A job's row is written beside its ``backtest.requested`` record (the strategy, window and LGD
asked, and who asked: the record's actor) and, once it ends, its ``backtest.completed`` record
(the status, the rows replayed, the error, and the SHA-256 of the summary and of the report
stored) or its ``backtest.cancelled`` record (who cancelled it: the record's actor). A job
still queued or running has no ending record. Records are found by the ``backtest_id`` their
payload names; a job whose records were purged under the retention policy is not checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from service.persistence.tables import backtests
from service.usecases.table_checks.base import TableCheck, Tally
from service.usecases.table_checks.records import (
    PURGED_NOTE,
    Stated,
    column,
    mismatches,
    records_of_kinds,
    set_aside,
)

# Spelt here rather than imported from service.usecases.backtests, whose imports load the models.
REQUESTED, COMPLETED, CANCELLED = "backtest.requested", "backtest.completed", "backtest.cancelled"
_ENDINGS = (COMPLETED, CANCELLED)
_B = backtests.c
# The columns a check reads: not the runner's (claim, heartbeat).
_ROWS = (select(_B.backtest_id, _B.strategy, _B.since, _B.until, _B.lgd, _B.status,
                _B.requested_by, _B.requested_at, _B.finished_at, _B.cancelled_by, _B.rows,
                _B.error, _B.summary, _B.report)
         .order_by(_B.requested_at, _B.backtest_id))
# Rows held at once: each holds its whole HTML report.
_BATCH = 16


@dataclass
class _Log:
    """The backtest records by job (none purged), and up to when records were purged."""

    by_job: dict[str, list[Stated]]
    purged_until: str | None = None

    def purged(self, moment: str | None) -> bool:
        """Whether a record made at ``moment`` may have been purged."""
        return (self.purged_until is not None and moment is not None
                and moment <= self.purged_until)


def check_backtests(conn: Connection) -> TableCheck:
    """Check each backtest against its request and ending records, and each request record
    against a row."""
    tally = Tally("backtests")
    log = _read_log(conn)
    known: set[str] = set()
    for row in conn.execute(_ROWS, execution_options={"yield_per": _BATCH}):
        _check(tally, row, log)
        known.add(row.backtest_id)
    for job_id, records in sorted(log.by_job.items(), key=lambda item: item[1][0].seq):
        if job_id not in known:
            first = records[0]
            tally.differ(job_id, f"record {first.seq} ({first.kind}) names it; there is no "
                                 "row", first.seq)
    return tally.verdict(PURGED_NOTE)


def _read_log(conn: Connection) -> _Log:
    log = _Log({})
    for record in records_of_kinds(conn, (REQUESTED, *_ENDINGS)):
        if record.payload is None:
            log.purged_until = max(log.purged_until or "", record.recorded_at)
            continue
        # A record whose payload names no job cannot be matched to a row.
        job_id = record.payload.get("backtest_id")
        if isinstance(job_id, str):
            log.by_job.setdefault(job_id, []).append(record)
    return log


def _check(tally: Tally, row: Any, log: _Log) -> None:
    records = log.by_job.get(row.backtest_id, [])
    requests = [r for r in records if r.kind == REQUESTED]
    endings = [r for r in records if r.kind in _ENDINGS]
    if not requests:
        if log.purged(row.requested_at):
            tally.unchecked += 1
        else:
            tally.differ(row.backtest_id, "no backtest.requested record states it")
        return
    # The log holds no purged record: this sets aside only a row with an altered one.
    if set_aside(tally, row.backtest_id, records, "which it derives from"):
        return
    problems: list[tuple[str, int | None]] = []
    if (found := mismatches(row, _asked(row, requests[0]))) is not None:
        problems.append(found)
    if len(endings) > 1:
        problems.append((f"records {endings[0].seq} and {endings[1].seq} both end it",
                         endings[1].seq))
    elif row.status in ("done", "failed", "cancelled") and not endings:
        if log.purged(row.finished_at):
            tally.unchecked += 1
            return
        problems.append((f"status is {row.status!r}; no record ends it", None))
    elif endings and (found := mismatches(row, _ended(endings[0]), _stored)) is not None:
        problems.append(found)
    tally.checked += 1
    if problems:
        seqs = [seq for _, seq in problems if seq is not None]
        tally.differ(row.backtest_id, "; ".join(text for text, _ in problems),
                     seqs[0] if seqs else None)


def _asked(row: Any, record: Stated) -> dict[str, tuple[Any, int]]:
    """What the request record states of the row's columns."""
    stated = record.payload or {}
    expected = {"strategy": (stated.get("strategy"), record.seq),
                "since": (stated.get("since"), record.seq),
                "until": (stated.get("until"), record.seq),
                "requested_by": (record.actor, record.seq)}
    if row.lgd is not None:  # NULL in jobs from before revision 0012
        expected["lgd"] = (stated.get("lgd"), record.seq)
    return expected


def _ended(record: Stated) -> dict[str, tuple[Any, int]]:
    """What the ending record states of the row's columns and the hashes of its texts."""
    if record.kind == CANCELLED:
        return {"status": ("cancelled", record.seq), "cancelled_by": (record.actor, record.seq)}
    stated = record.payload or {}
    return {"status": (stated.get("status"), record.seq),
            "rows": (stated.get("rows"), record.seq),
            "error": (stated.get("error"), record.seq),
            "summary SHA-256": (stated.get("summary_sha256"), record.seq),
            "report SHA-256": (stated.get("report_sha256"), record.seq)}


def _stored(row: Any, name: str) -> Any:
    """What the row holds under ``name``: for "<column> SHA-256", the hash of its text."""
    if name.endswith(" SHA-256"):
        text = row._mapping[name.split()[0]]
        return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()
    return column(row, name)
