"""Backtests asked for through the API: queued as rows of ``backtests``, run apart, polled.

A request is checked against the caps (a requester's unfinished backtests, and all of them)
and stored with its audit record, in one transaction under the chain lock, so that two
requests cannot both take the last place. Any worker's runner
(:mod:`service.usecases.backtests.runner`)
may then claim the job and run it in a process of its own; any worker answers a poll for it.
A queued job reads ``queued`` however long it waits; a running job whose runner stopped reads
``failed`` once its heartbeat is older than ``STALE_AFTER``, and can simply be asked again. A
risk officer may cancel a queued or running job. The request (who asked for which strategy
over which window), the ending and a cancellation are each an audit record.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from audit import AuditStore
from audit.canonical import format_time
from service.domain.encoding import now_text
from service.persistence.tables import backtests
from service.usecases.backtests import rows
from service.usecases.backtests.rows import (
    REQUESTED_KIND,
    STALE_AFTER,
    BacktestNotFound,
    NotCancellable,
    standing,
)
from service.usecases.backtests.run import Backtest
from service.usecases.backtests.runner import BacktestRunner
from service.usecases.engines import Engines

__all__ = ["REQUESTED_KIND", "STALE_AFTER", "BacktestDesk", "BacktestLimitReached",
           "BacktestNotFound", "NotCancellable"]

_LIST_LIMIT = 50


class BacktestLimitReached(Exception):
    """A cap on unfinished backtests is reached: ``scope`` is ``requester`` or ``queue``."""

    def __init__(self, message: str, *, scope: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.scope = scope
        self.retry_after_s = retry_after_s


class BacktestDesk:
    """Backtests requested, cancelled and read by anyone; run by a runner, this worker's
    (``runner``) or another's."""

    def __init__(self, store: AuditStore, engines: Engines, runner: BacktestRunner | None,
                 *, per_requester: int, queue_limit: int) -> None:
        self.store = store
        self.engines = engines
        self.runner = runner
        self.per_requester = per_requester
        self.queue_limit = queue_limit

    def start(self) -> None:
        """Start this worker's runner, if it has one."""
        if self.runner is not None:
            self.runner.start()

    def request(self, backtest: Backtest, actor: str) -> dict[str, Any]:
        """Store and audit a request, wake the runner, and return the job as it stands.

        ModelError or PolicyError when the candidate cannot be loaded, StrategyError when it
        cannot decide alone, BacktestLimitReached past a cap: refused before anything is
        written.
        """
        strategy = backtest.strategy
        self.engines.candidate(strategy)
        job_id = f"bt_{uuid.uuid4().hex}"
        stamp = now_text()
        window = {"since": _text(backtest.since), "until": _text(backtest.until)}
        with self.store.writer() as writer:
            self._admit(writer.connection, actor)
            writer.append(REQUESTED_KIND, {"backtest_id": job_id, "strategy": strategy.name,
                                           **window, "lgd": backtest.lgd}, actor=actor)
            writer.connection.execute(insert(backtests).values(
                backtest_id=job_id, strategy=strategy.name, **window, lgd=backtest.lgd,
                status="queued", requested_by=actor, requested_at=stamp,
                heartbeat_at=stamp))
        if self.runner is not None:
            self.runner.wake()
        return self.get(job_id)

    def _admit(self, conn: Any, actor: str) -> None:
        """Refuse a request past a cap; read under the chain lock, which every request holds."""
        mine, waiting = rows.unfinished(conn, actor), rows.unfinished(conn)
        if mine < self.per_requester and waiting < self.queue_limit:
            return
        retry_after = rows.typical_run_s(conn)
        if mine >= self.per_requester:
            raise BacktestLimitReached(
                f"you have {mine} backtests waiting or running, the most one requester may "
                f"have ({self.per_requester}); request again once one has finished, or "
                "cancel one", scope="requester", retry_after_s=retry_after)
        raise BacktestLimitReached(
            f"the queue holds {waiting} backtests waiting or running, the most it takes "
            f"({self.queue_limit}); request again later", scope="queue",
            retry_after_s=retry_after)

    def cancel(self, job_id: str, actor: str) -> dict[str, Any]:
        """Cancel a queued or running job as ``actor`` (audited) and return it; a running
        job's process is stopped. BacktestNotFound; NotCancellable once it has ended."""
        rows.cancel(self.store, job_id, actor)
        if self.runner is not None:
            self.runner.wake()
        return self.get(job_id)

    def get(self, job_id: str, *, with_report: bool = False) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(backtests).where(
                backtests.c.backtest_id == job_id)).first()
        if row is None:
            raise BacktestNotFound(f"no backtest {job_id}")
        return _view(row, with_report=with_report)

    def list(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            found = conn.execute(select(backtests).order_by(
                backtests.c.requested_at.desc()).limit(_LIST_LIMIT)).all()
        return [_view(row, with_summary=False) for row in found]

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _view(row: Any, *, with_summary: bool = True, with_report: bool = False
          ) -> dict[str, Any]:
    status, error = standing(row)
    view = {"backtest_id": row.backtest_id, "strategy": row.strategy, "since": row.since,
            "until": row.until, "status": status, "requested_by": row.requested_by,
            "requested_at": row.requested_at, "started_at": row.started_at,
            "finished_at": row.finished_at, "rows": row.rows, "error": error,
            "cancelled_by": row.cancelled_by}
    if with_summary:
        view["summary"] = json.loads(row.summary) if row.summary else None
    if with_report:
        view["report"] = row.report
    return view
