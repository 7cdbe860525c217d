"""One worker's backtest runner: claims queued jobs from the database and runs each in a
process of its own, at most ``processes`` at a time.

One thread per worker does it all. It claims the oldest queued job while it has room
(:func:`~service.usecases.backtests.rows.claim_next`: of several runners, one wins a job), starts a
``spawn`` process for it (:mod:`service.usecases.backtests.child`), beats the job's heartbeat while
the process lives, and writes the ending the process sends back. It looks at once when its
worker queues or cancels a job, and every ``POLL_S`` for jobs other workers queued or left
behind. A job cancelled on any worker has its process killed within ``WATCH_S``; a job whose
runner stopped (its heartbeat older than ``STALE_AFTER``) is given up as failed by whichever
runner sees it first. A runner closed with jobs running puts them back in the queue.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit import AuditStore
from service.usecases.backtests import rows
from service.usecases.backtests.child import ChildJob, run_in_child
from service.usecases.backtests.rows import Ending

if TYPE_CHECKING:
    from service.usecases.backtests.run import ReportRenderer

log = logging.getLogger("flashloan.backtests")

# How often an idle runner looks for jobs queued elsewhere, and gives up stopped ones.
POLL_S = 5.0
# How often a busy runner looks whether its processes ended, and whether its jobs were
# cancelled elsewhere.
TICK_S = 0.25
WATCH_S = 2.0
_JOIN_S = 10.0


@dataclass(frozen=True, slots=True)
class RunnerSetup:
    """What a backtest's process opens and loads: the database, where models, policies and
    the Dask scheduler are, and the settings' policy as the worker loaded it."""

    database_url: str
    model_search: tuple[Path, ...] = ()
    policy_search: tuple[Path, ...] = ()
    dask: str | None = None
    # The document of the settings' policy (perhaps the operator's own file, in no folder):
    # the process decides with the policies the worker checked the request against.
    settings_policy: dict[str, Any] | None = None
    # Renders each backtest's report in its process (a module-level function: it pickles).
    render: ReportRenderer | None = None


@dataclass
class _Running:
    process: BaseProcess
    results: Connection
    # The ending the process sent, kept until the database has taken it.
    ending: Ending | None = None


@dataclass
class _Clock:
    watched: float = 0.0
    beaten: float = 0.0
    polled: float = field(default=-POLL_S)


class BacktestRunner:
    """Runs queued backtests in child processes, up to ``processes`` at once."""

    def __init__(self, store: AuditStore, setup: RunnerSetup, *, processes: int) -> None:
        self.store = store
        self.setup = setup
        self.processes = processes
        self.claimant = ""
        self._running: dict[str, _Running] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clock = _Clock()

    def start(self) -> None:
        """Start this process's thread (again after a fork, which does not copy threads)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            host = socket.gethostname()[:40]
            self.claimant = f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="backtest-runner",
                                            daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Look now: a job was queued or cancelled on this worker."""
        self._wake.set()

    def close(self) -> None:
        """Stop the thread, kill the processes and put their jobs back in the queue."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=_JOIN_S)
        # A thread not stopped in time still collects: only a copy is read.
        stopped = list(self._running)
        for job_id in stopped:
            self._kill(job_id)
        try:
            rows.put_back(self.store.engine, self.claimant, stopped)
        except Exception:
            # They will be given up as failed once their heartbeat is stale.
            log.exception("backtests not put back in the queue", extra={"jobs": stopped})

    def _loop(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                self.step(woken)
            except Exception:
                # The next step retries; meanwhile the jobs' heartbeats tell how they stand.
                log.exception("the backtest runner could not take its step")
            self._wake.wait(TICK_S if self._running else POLL_S)

    def step(self, woken: bool = True) -> None:
        """Collect ended processes, stop cancelled jobs, beat, give up stopped jobs and
        claim queued ones while there is room."""
        now = time.monotonic()
        self._collect()
        clock = self._clock
        if self._running and (woken or now - clock.watched >= WATCH_S):
            clock.watched = now
            ours = rows.still_ours(self.store.engine, self.claimant, list(self._running))
            for job_id in set(self._running) - ours:
                log.info("backtest stopped: cancelled or given up", extra={
                    "backtest_id": job_id})
                self._kill(job_id)
        if self._running and now - clock.beaten >= rows.HEARTBEAT_S:
            clock.beaten = now
            rows.beat(self.store.engine, self.claimant, list(self._running))
        if woken or now - clock.polled >= POLL_S:
            clock.polled = now
            for job_id in rows.give_up_stopped(self.store):
                log.warning("backtest given up: its runner stopped", extra={
                    "backtest_id": job_id})
            self._fill()

    def _fill(self) -> None:
        while len(self._running) < self.processes and not self._stop.is_set():
            row = rows.claim_next(self.store.engine, self.claimant)
            if row is None:
                return
            self._start(row)

    def _start(self, row: Any) -> None:
        job = ChildJob(row.backtest_id, self.setup.database_url, self.setup.model_search,
                       self.setup.policy_search, self.setup.dask, row.strategy, row.since,
                       row.until, row.lgd, self.setup.settings_policy,
                       self.setup.render)
        context = multiprocessing.get_context("spawn")
        results, sending = context.Pipe(duplex=False)
        process = context.Process(target=run_in_child, args=(job, sending),
                                  name=f"backtest-{row.backtest_id}", daemon=True)
        try:
            process.start()
        except Exception as exc:
            results.close()
            log.exception("backtest process not started", extra={"backtest_id": job.backtest_id})
            rows.finish(self.store, job.backtest_id, self.claimant, Ending(
                "failed", error=f"the backtest could not be started ({type(exc).__name__})"))
            return
        finally:
            sending.close()
        self._running[row.backtest_id] = _Running(process, results)
        log.info("backtest started", extra={"backtest_id": row.backtest_id,
                                            "child_pid": process.pid})

    def _collect(self) -> None:
        for job_id, run in list(self._running.items()):
            if run.ending is None:
                if not run.results.poll():
                    continue
                run.ending = self._receive(run)
            # The job stays ours (its heartbeat beaten) until its ending is written; a write
            # that fails is tried again at the next step.
            try:
                ended = rows.finish(self.store, job_id, self.claimant, run.ending)
            except Exception:
                log.exception("backtest ending not written; tried again",
                              extra={"backtest_id": job_id})
                continue
            self._running.pop(job_id, None)
            if ended:
                log.info("backtest ended", extra={"backtest_id": job_id,
                                                  "status": run.ending.status})

    @staticmethod
    def _receive(run: _Running) -> Ending:
        try:
            ending: Ending = run.results.recv()
        except (EOFError, OSError):
            run.process.join(_JOIN_S)
            ending = Ending("failed", error="the process running the backtest stopped "
                                            f"(exit code {run.process.exitcode})")
        run.process.join(_JOIN_S)
        run.results.close()
        return ending

    def _kill(self, job_id: str) -> None:
        run = self._running.pop(job_id, None)
        if run is None:
            # Collected meanwhile by a thread that close() did not stop in time.
            return
        run.process.kill()
        run.process.join(_JOIN_S)
        run.results.close()
