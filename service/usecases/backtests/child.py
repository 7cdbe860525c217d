"""What runs in a backtest's own process: the job, read from its row's terms, decided, and its
ending sent back to the runner that started the process.

The process is started with ``spawn``: it shares nothing with the worker but what it is sent,
opens its own connections and loads its own engines, and runs only on processor time the
worker's request threads leave (they keep their GIL too). It stops when the worker that
started it stops.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.usecases.backtests.run import ReportRenderer

log = logging.getLogger("flashloan.backtests")

# Decisions first: where the kernel offers it, a backtest's process runs only on processor
# time nothing else wants (SCHED_IDLE); elsewhere at the lowest priority.
NICENESS = 19


@dataclass(frozen=True, slots=True)
class ChildJob:
    """Everything a backtest's process needs, sent to it whole (picklable)."""

    backtest_id: str
    database_url: str
    model_search: tuple[Path, ...]
    policy_search: tuple[Path, ...]
    dask: str | None
    strategy: str
    since: str | None
    until: str | None
    lgd: float | None  # None in jobs from before revision 0012: the default
    settings_policy: dict[str, Any] | None = None  # adopted as the worker adopted it
    # What renders the report: a module-level function, so that the job pickles.
    render: ReportRenderer | None = None


def run_in_child(job: ChildJob, results: Connection) -> None:
    """Run one backtest and send its :class:`~service.usecases.backtests.rows.Ending`; the target of
    the process."""
    _yield_processor()
    # Model prediction on one thread: the other processors are the decisions'.
    os.environ["OMP_NUM_THREADS"] = "1"
    _stop_with_parent()
    from service.ops.logs import configure_logging

    configure_logging()
    results.send(_ending(job))
    results.close()


def _yield_processor() -> None:
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    os.nice(NICENESS)


def _stop_with_parent() -> None:
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        # Nobody is left to receive the result or to beat the job's heartbeat.
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _ending(job: ChildJob):
    from audit import AuditStore
    from audit.canonical import parse_time
    from scoring.governance.strategy import Strategy
    from scoring.online.policy import Policy
    from service.usecases.backtests.rows import Ending
    from service.usecases.backtests.run import DEFAULT_LGD, Backtest, run_backtest, summary_text
    from service.usecases.engines import Engines

    store = None
    try:
        backtest = Backtest(Strategy.parse(job.strategy, "strategy"),
                            parse_time(job.since) if job.since else None,
                            parse_time(job.until) if job.until else None,
                            DEFAULT_LGD if job.lgd is None else job.lgd)
        engines = Engines(job.model_search, job.policy_search)
        if job.settings_policy is not None:
            engines.adopt_policy(Policy(job.settings_policy))
        store = AuditStore.from_url(job.database_url)
        if job.render is None:
            raise RuntimeError("the job names no report renderer")
        result = run_backtest(store, engines, backtest, render=job.render, dask=job.dask)
    except ValueError as exc:
        # The candidate or the terms: a model, policy or strategy that cannot be used
        # (ModelError, PolicyError and StrategyError are ValueErrors), or a window or LGD.
        return Ending("failed", error=str(exc))
    except Exception as exc:
        log.exception("backtest failed", extra={"backtest_id": job.backtest_id})
        return Ending("failed", error=f"the backtest failed ({type(exc).__name__}); see the "
                                      "service log")
    finally:
        if store is not None:
            store.dispose()
    return Ending("done", rows=result.rows, summary=summary_text(result.summary),
                  report=result.report)
