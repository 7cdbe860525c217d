"""Backtests asked for through the API: stored as jobs, run in the background, polled.

A job is a row of ``backtests``: any worker answers a poll for it. The worker that took the
request runs it on a thread of its own (one backtest at a time per worker; others wait in
its queue), beating a heartbeat while it runs. A job whose worker stopped is reported failed
once its heartbeat is older than ``STALE_AFTER``; its request can simply be made again. Each
request is an audit record (who asked for which strategy over which window): a backtest
reads the decision log.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from audit import AuditStore
from audit.canonical import format_time, parse_time
from scoring.model import ModelError
from scoring.policy import PolicyError
from service.backtests.run import Backtest, run_backtest
from service.db import backtests, now_text
from service.engines import Engines

log = logging.getLogger("flashloan.backtests")

REQUESTED_KIND = "backtest.requested"
# How often a running job says it is alive, and after how long without it is given up.
HEARTBEAT_S = 10.0
STALE_AFTER = timedelta(seconds=60)
_LIST_LIMIT = 50


class BacktestNotFound(LookupError):
    pass


class BacktestDesk:
    """One worker's backtests: requests stored, run in the background, read by anyone."""

    def __init__(self, store: AuditStore, engines: Engines, *,
                 dask: str | None = None) -> None:
        self.store = store
        self.engines = engines
        self.dask = dask
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def request(self, backtest: Backtest, actor: str) -> dict[str, Any]:
        """Store and audit a request, start it, and return the job as it stands.

        ModelError or PolicyError when the candidate cannot be loaded: refused before
        anything is written.
        """
        strategy = backtest.strategy
        self.engines.engine(strategy.model, strategy.policy)
        job_id = f"bt_{uuid.uuid4().hex}"
        stamp = now_text()
        window = {"since": _text(backtest.since), "until": _text(backtest.until)}
        with self.store.writer() as writer:
            writer.append(REQUESTED_KIND, {"backtest_id": job_id, "strategy": strategy.name,
                                           **window, "lgd": backtest.lgd}, actor=actor)
            writer.connection.execute(insert(backtests).values(
                backtest_id=job_id, strategy=strategy.name, **window, status="queued",
                requested_by=actor, requested_at=stamp, heartbeat_at=stamp))
        self._executor().submit(self._run, job_id, backtest)
        return self.get(job_id)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest")
            return self._pool

    def _set(self, job_id: str, **values: Any) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(backtests).where(backtests.c.backtest_id == job_id)
                         .values(**values))

    def _run(self, job_id: str, backtest: Backtest) -> None:
        self._set(job_id, status="running", heartbeat_at=now_text())
        beating = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job_id, beating), daemon=True,
                                name=f"backtest-heartbeat-{job_id}")
        beat.start()
        try:
            result = run_backtest(self.store, self.engines, backtest, dask=self.dask)
        except (ModelError, PolicyError, ValueError) as exc:
            beating.set()
            self._set(job_id, status="failed", error=str(exc), finished_at=now_text())
            return
        except Exception as exc:
            beating.set()
            log.exception("backtest %s failed", job_id)
            self._set(job_id, status="failed", finished_at=now_text(),
                      error=f"the backtest failed ({type(exc).__name__}); see the service log")
            return
        beating.set()
        self._set(job_id, status="done", finished_at=now_text(), rows=result.rows,
                  summary=json.dumps(result.summary, ensure_ascii=False),
                  report=result.report, heartbeat_at=now_text())

    def _beat(self, job_id: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                self._set(job_id, heartbeat_at=now_text())
            except Exception:
                log.exception("backtest %s: heartbeat not written", job_id)

    def get(self, job_id: str, *, with_report: bool = False) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(backtests).where(
                backtests.c.backtest_id == job_id)).first()
        if row is None:
            raise BacktestNotFound(f"no backtest {job_id}")
        return _view(row, with_report=with_report)

    def list(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(backtests).order_by(
                backtests.c.requested_at.desc()).limit(_LIST_LIMIT)).all()
        return [_view(row, with_summary=False) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _view(row: Any, *, with_summary: bool = True, with_report: bool = False
          ) -> dict[str, Any]:
    status, error = row.status, row.error
    if status in ("queued", "running") and row.heartbeat_at is not None and (
            datetime.now(UTC) - parse_time(row.heartbeat_at) > STALE_AFTER):
        # Its worker stopped: nothing will finish it.
        status, error = "failed", ("the worker running this backtest stopped before it "
                                   "finished; request it again")
    view = {"backtest_id": row.backtest_id, "strategy": row.strategy, "since": row.since,
            "until": row.until, "status": status, "requested_by": row.requested_by,
            "requested_at": row.requested_at, "finished_at": row.finished_at,
            "rows": row.rows, "error": error}
    if with_summary:
        view["summary"] = json.loads(row.summary) if row.summary else None
    if with_report:
        view["report"] = row.report
    return view

