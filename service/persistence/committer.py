"""Group commit: the audit writes of concurrent requests share one transaction and one fsync.

Each decision's records must be durable before its answer leaves, and SQLite (synchronous
FULL) or PostgreSQL pay a disk flush per commit. Requests that arrive while a commit is
under way wait for the next one, which writes them all: durability per decision, one flush
per batch. A batch that fails is retried one request at a time, so one bad request cannot
withhold another's decision — unless its COMMIT itself failed: the batch may then be durable,
so it is not written again, and every request of it hears ``CommitOutcomeUnknown`` and finds
out by its own application id whether its decision was committed.

A work may bring an extra (the monitoring cells of a decision): the committer hands a batch's
extras to ``after_batch``, called inside the batch's transaction, so that what it writes (the
monitoring roll-up) counts a decision exactly when the decision is committed. The committer
knows nothing of what the extras mean.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

from sqlalchemy import Connection

from audit import AuditStore, ChainWriter, CommitOutcomeUnknown

log = logging.getLogger("flashloan.committer")

Work = Callable[[ChainWriter], None]
# Called with the batch's connection and the extras its works brought, in its transaction.
AfterBatch = Callable[[Connection, Sequence[Any]], None]
Item = tuple[Work, Any, "Future[None]"]


class GroupCommitter:
    """One writer thread per worker process, committing queued work in batches."""

    def __init__(self, store: AuditStore, *, max_batch: int = 32,
                 timeout_s: float = 30.0, after_batch: AfterBatch | None = None) -> None:
        self.store = store
        self.after_batch = after_batch
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.batches = 0
        self.items = 0

    def submit(self, work: Work, extra: Any = None) -> None:
        """Run ``work`` inside a chain-locked transaction, handing ``extra`` (if any) to
        ``after_batch`` in it; return once it is committed.

        Raises the write's error, or TimeoutError if it never started within ``timeout_s``
        (it is then cancelled and will not run). A write that has started is waited for to
        its end — the database's own lock timeout bounds it — so that a refusal never
        coexists with a decision committed afterwards.
        """
        future: Future[None] = Future()
        self._ensure_thread()
        self._queue.put((work, extra, future))
        try:
            future.result(timeout=self.timeout_s)
        except FuturesTimeout:
            if future.cancel():
                raise TimeoutError("the audit writer did not take this write in time") from None
            future.result()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="audit-committer",
                                                daemon=True)
                self._thread.start()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._commit(batch)
                    return
                batch.append(item)
            self._commit(batch)

    def _write(self, items: list[Item]) -> None:
        """Run the works of ``items``, then ``after_batch`` with their extras, in one
        transaction."""
        with self.store.writer() as writer:
            for work, _, _ in items:
                work(writer)
            if self.after_batch is not None:
                self.after_batch(writer.connection,
                                 [extra for _, extra, _ in items if extra is not None])

    def _commit(self, batch: list[Item]) -> None:
        live = [item for item in batch if item[2].set_running_or_notify_cancel()]
        if not live:
            return
        try:
            self._write(live)
        except CommitOutcomeUnknown as exc:
            # The batch may be durable: writing it again could record its decisions twice.
            for _, _, future in live:
                future.set_exception(CommitOutcomeUnknown.from_commit_error(exc.__cause__ or exc))
            return
        except Exception as exc:
            if len(live) == 1:
                live[0][2].set_exception(exc)
                return
            log.warning("a batch of %d audit writes failed; retrying one by one", len(live))
            for item in live:
                try:
                    self._write([item])
                except Exception as one:
                    item[2].set_exception(one)
                else:
                    item[2].set_result(None)
            return
        self.batches += 1
        self.items += len(live)
        for _, _, future in live:
            future.set_result(None)
