"""The backtests table as a queue: what a job asks, which runner runs it, and how it ended.

Every change of a job's status is one conditional UPDATE that only one party can win. A
runner claims a queued job (queued → running, naming itself in ``claimed_by``), beats its
heartbeat while it runs, and ends it (running → done or failed) only while the row still
names it; a risk officer cancels a queued or running job; any runner gives up a running job
whose heartbeat stopped (running → failed). Each ending is written in one transaction with
its audit record, so that the table can be checked against the log
(:mod:`service.usecases.table_checks.backtests`).
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update

from audit import AuditStore
from audit.canonical import parse_time
from service.domain.encoding import now_text
from service.persistence.tables import backtests, write_transaction

REQUESTED_KIND = "backtest.requested"
COMPLETED_KIND = "backtest.completed"
CANCELLED_KIND = "backtest.cancelled"
UNFINISHED = ("queued", "running")
# Who the records of a job's ending name when no person ended it.
RUNNER_ACTOR = "system:backtests"
# How often a runner says a job it runs is alive, and after how long without it the job is
# given up.
HEARTBEAT_S = 10.0
STALE_AFTER = timedelta(seconds=60)
STOPPED = "the worker running this backtest stopped before it finished; request it again"
# What Retry-After says when no backtest has finished yet, and its bounds.
RETRY_AFTER_S = 60
_RETRY_BOUNDS_S = (5, 3600)
_RECENT = 20


class BacktestNotFound(LookupError):
    pass


class NotCancellable(Exception):
    """The backtest has ended (done, failed or cancelled): there is nothing to cancel."""


@dataclass(frozen=True, slots=True)
class Ending:
    """How a job ended: ``done`` with its summary (JSON text), report and rows, or
    ``failed`` with an error a person reads."""

    status: str
    rows: int | None = None
    summary: str | None = None
    report: str | None = None
    error: str | None = None


def text_sha256(text: str | None) -> str | None:
    """The SHA-256 of a stored text (UTF-8), as a completion record states it."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def completion_payload(job_id: str, ending: Ending) -> dict[str, Any]:
    """The payload of a job's ``backtest.completed`` record: what its row must hold."""
    return {"backtest_id": job_id, "status": ending.status, "rows": ending.rows,
            "error": ending.error, "summary_sha256": text_sha256(ending.summary),
            "report_sha256": text_sha256(ending.report)}


def standing(row: Any, now: datetime | None = None) -> tuple[str, str | None]:
    """A job's status and error as they stand: a running job whose heartbeat stopped has
    failed, whether or not a runner has given it up yet. A queued job waits, however long."""
    moment = now or datetime.now(UTC)
    if row.status == "running" and row.heartbeat_at is not None and (
            moment - parse_time(row.heartbeat_at) > STALE_AFTER):
        return "failed", STOPPED
    return row.status, row.error


def _alive(moment: datetime) -> Any:
    """Unfinished jobs: queued, or running with a live heartbeat."""
    return or_(backtests.c.status == "queued",
               and_(backtests.c.status == "running",
                    backtests.c.heartbeat_at >= now_text(moment - STALE_AFTER)))


def unfinished(conn: Connection, requested_by: str | None = None) -> int:
    """How many jobs wait or run, in all or of one requester."""
    condition = _alive(datetime.now(UTC))
    if requested_by is not None:
        condition = and_(condition, backtests.c.requested_by == requested_by)
    return int(conn.execute(select(func.count()).select_from(backtests)
                            .where(condition)).scalar_one())


def typical_run_s(conn: Connection) -> int:
    """How long a backtest runs here, from the latest that finished: the median, in whole
    seconds within bounds, or ``RETRY_AFTER_S`` when none has."""
    rows = conn.execute(select(backtests.c.started_at, backtests.c.finished_at).where(
        backtests.c.status == "done", backtests.c.started_at.is_not(None))
        .order_by(backtests.c.finished_at.desc()).limit(_RECENT)).all()
    if not rows:
        return RETRY_AFTER_S
    median = statistics.median((parse_time(r.finished_at) - parse_time(r.started_at))
                               .total_seconds() for r in rows)
    low, high = _RETRY_BOUNDS_S
    return int(min(max(median + 1, low), high))


def claim_next(engine: Engine, claimant: str) -> Any | None:
    """Claim the oldest queued job for ``claimant`` and return its row; None when none waits.

    The UPDATE names the status it expects, so of two runners claiming one job only one
    changes the row; the other looks for the next. An empty queue is seen by a plain read:
    a runner polling it takes no write lock from the decisions.
    """
    oldest = (select(backtests).where(backtests.c.status == "queued")
              .order_by(backtests.c.requested_at, backtests.c.backtest_id).limit(1))
    while True:
        with engine.connect() as conn:
            if conn.execute(oldest).first() is None:
                return None
        with write_transaction(engine) as conn:
            row = conn.execute(oldest).first()
            if row is None:
                return None
            stamp = now_text()
            won = conn.execute(update(backtests).where(
                backtests.c.backtest_id == row.backtest_id, backtests.c.status == "queued")
                .values(status="running", claimed_by=claimant, started_at=stamp,
                        heartbeat_at=stamp)).rowcount == 1
        if won:
            return row


def _ours(job_ids: list[str], claimant: str) -> Any:
    return and_(backtests.c.backtest_id.in_(job_ids), backtests.c.status == "running",
                backtests.c.claimed_by == claimant)


def still_ours(engine: Engine, claimant: str, job_ids: list[str]) -> set[str]:
    """Of ``job_ids``, those still running under ``claimant``: not cancelled, not given up."""
    if not job_ids:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(select(backtests.c.backtest_id)
                                .where(_ours(job_ids, claimant))).scalars())


def beat(engine: Engine, claimant: str, job_ids: list[str]) -> None:
    """Say that ``claimant`` still runs ``job_ids``."""
    if job_ids:
        with write_transaction(engine) as conn:
            conn.execute(update(backtests).where(_ours(job_ids, claimant))
                         .values(heartbeat_at=now_text()))


def finish(store: AuditStore, job_id: str, claimant: str, ending: Ending) -> bool:
    """End a job ``claimant`` runs, with its ``backtest.completed`` record; False, writing
    nothing, when the job is no longer its own (cancelled or given up meanwhile)."""
    stamp = now_text()
    with store.writer() as writer:
        ended = writer.connection.execute(update(backtests).where(
            _ours([job_id], claimant)).values(
            status=ending.status, finished_at=stamp, heartbeat_at=stamp, rows=ending.rows,
            summary=ending.summary, report=ending.report, error=ending.error)).rowcount == 1
        if ended:
            writer.append(COMPLETED_KIND, completion_payload(job_id, ending),
                          actor=RUNNER_ACTOR)
    return ended


def give_up_stopped(store: AuditStore) -> list[str]:
    """Fail every running job whose heartbeat stopped, each with its completion record; return
    their ids."""
    cutoff = now_text(datetime.now(UTC) - STALE_AFTER)
    with store.engine.connect() as conn:
        stale = conn.execute(select(backtests.c.backtest_id, backtests.c.heartbeat_at).where(
            backtests.c.status == "running", backtests.c.heartbeat_at < cutoff)).all()
    given_up = []
    ending = Ending("failed", error=STOPPED)
    for job_id, heartbeat_at in stale:
        with store.writer() as writer:
            # Only while its heartbeat is the one seen stopped: a runner that came back wins.
            if writer.connection.execute(update(backtests).where(
                    backtests.c.backtest_id == job_id, backtests.c.status == "running",
                    backtests.c.heartbeat_at == heartbeat_at).values(
                    status="failed", error=STOPPED, finished_at=now_text())).rowcount == 1:
                writer.append(COMPLETED_KIND, completion_payload(job_id, ending),
                              actor=RUNNER_ACTOR)
                given_up.append(job_id)
    return given_up


def put_back(engine: Engine, claimant: str, job_ids: list[str]) -> None:
    """Return jobs ``claimant`` runs to the queue, unstarted, for another runner to run."""
    if job_ids:
        with write_transaction(engine) as conn:
            conn.execute(update(backtests).where(_ours(job_ids, claimant)).values(
                status="queued", claimed_by=None, started_at=None, heartbeat_at=now_text()))


def cancel(store: AuditStore, job_id: str, actor: str) -> str:
    """Cancel a queued or running job as ``actor``, with its ``backtest.cancelled`` record;
    return the status it had. BacktestNotFound, or NotCancellable once it has ended."""
    with store.writer() as writer:
        conn = writer.connection
        while True:
            row = conn.execute(select(backtests).where(
                backtests.c.backtest_id == job_id)).first()
            if row is None:
                raise BacktestNotFound(f"no backtest {job_id}")
            status, _ = standing(row)
            if status not in UNFINISHED:
                raise NotCancellable(f"backtest {job_id} is {status}: only a queued or running "
                                     "backtest can be cancelled")
            # A runner may claim it meanwhile (queued → running): then it is read again.
            if conn.execute(update(backtests).where(
                    backtests.c.backtest_id == job_id, backtests.c.status == row.status)
                    .values(status="cancelled", cancelled_by=actor, finished_at=now_text(),
                            error=None)).rowcount == 1:
                writer.append(CANCELLED_KIND, {"backtest_id": job_id, "was": row.status},
                              actor=actor)
                return str(row.status)
