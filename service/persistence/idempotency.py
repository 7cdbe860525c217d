"""Idempotency keys: a retry with the same body gets the first answer; another body a conflict.

A request holds its key while it decides: a lock, which writes nothing. The key's row is
written once, ``done`` with the answer, by the decision's own transaction, so a keyed
decision costs no write transaction beyond the decision's. The lock is let go when the
request ends, and by the system when its holder dies, so a request killed mid-decision
leaves nothing behind and the next retry decides at once (the locks:
:mod:`service.persistence.idempotency_locks`,
a PostgreSQL advisory lock or a byte-range lock on a file beside a SQLite database).

A duplicate that finds the key held waits (up to ``wait_s``) for the answer to be written,
and replays it, or for the lock to be let go (the first request failed or died), and takes
it. Whoever takes the lock reads the row before deciding: ``done`` (a duplicate that
finished just before), it is replayed; written for another body, a conflict. The row's
primary key is the last guard: a decision whose row finds another's in its place is not
recorded (:class:`ClaimLost`), so a key never has two decisions, not even when the lock
failed to keep them apart (a lock file that cannot be opened, a lock connection lost).

Rows ``in_progress`` were written by earlier releases, which claimed a key by inserting its
row; one is waited for like a held lock until it is ``expiry_s`` old (the deadline plus the
commit timeout, the longest a live request takes to decide or give up), then taken over by
the decision that completes the key: a conditional UPDATE, so only one can.

Keys are kept ``retention_s`` (``FLASHLOAN_IDEMPOTENCY_RETENTION_H``, 24 h by default) from
their claim, then purged, and expired ``in_progress`` rows with them: each worker purges at
most once every ``purge_every_s`` (a minute), on a claim, so no scheduler is needed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from canonical import canonical_json
from service.domain.encoding import now_text, time_of
from service.domain.errors import IdempotencyConflict, InProgress
from service.persistence.idempotency_locks import (
    AdvisoryKeyLocks,
    FileKeyLocks,
    Hold,
    file_key_locks,
)
from service.persistence.tables import idempotency_keys, write_transaction

log = logging.getLogger("flashloan.idempotency")

_T = idempotency_keys

DEFAULT_RETENTION_S = 24 * 3600.0
PURGE_EVERY_S = 60.0

# The key's row, unless a row holds the key already: told by the row count, not by a unique
# violation, which (PostgreSQL) would abort the transaction of every decision committed with
# this one. The row count of an INSERT is kept only when asked for.
_INSERT_DONE = {name: dialect.insert(_T).on_conflict_do_nothing()
                .execution_options(preserve_rowcount=True)
                for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}


def body_hash(body: Any) -> str:
    """Return the digest of a request body, independent of key order and spacing."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    """A stored answer to return instead of deciding again."""

    status: int
    response: str  # the stored answer, JSON text


@dataclass(frozen=True, slots=True)
class Claim:
    """A key this request holds: its row is written by the decision's transaction."""

    key_id: str
    key: str
    digest: str
    claimed_at: str
    # The created_at of an expired ``in_progress`` row an earlier release left, which the
    # completion takes over; None where the key had no row.
    left_at: str | None = None
    hold: Hold | None = field(default=None, repr=False, compare=False)


class ClaimLost(Exception):
    """Another request's row holds the key already: this decision must not commit."""


class IdempotencyKeys:
    """Holds keys while deciding; writes each one's answer in the decision's transaction.

    ``holders`` is how many lock connections a worker keeps open on PostgreSQL: one per
    request that holds a key, so as many as the worker's threads.
    """

    def __init__(self, engine: Engine, *, expiry_s: float,
                 retention_s: float = DEFAULT_RETENTION_S, wait_s: float = 30.0,
                 poll_s: float = 0.05, purge_every_s: float = PURGE_EVERY_S,
                 holders: int = 8) -> None:
        if not 0 < expiry_s <= retention_s:
            raise ValueError(f"expiry_s must be positive and at most retention_s "
                             f"({retention_s:g}); got {expiry_s:g}")
        self.engine = engine
        self.expiry_s = expiry_s
        self.retention_s = retention_s
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.purge_every_s = purge_every_s
        self._last_purge = -math.inf  # monotonic time; the first claim of a worker purges
        self._purge_lock = threading.Lock()
        self._locks: AdvisoryKeyLocks | FileKeyLocks = (
            AdvisoryKeyLocks(engine, holders) if engine.dialect.name == "postgresql"
            else file_key_locks(engine))

    def claim(self, key_id: str, key: str, digest: str) -> Replay | Claim:
        """Hold ``key`` for this body; return the stored answer if it was already decided.

        A concurrent duplicate waits (up to ``wait_s``) for the first request's answer, or
        for its lock, should it fail or die. The holder must :meth:`release` the claim.
        """
        self._purge_now_and_then()
        deadline = time.monotonic() + self.wait_s
        while True:
            hold = self._locks.hold(key_id, key)
            try:
                row = self._row(key_id, key)
                if row is not None and row.body_hash != digest:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was used with a different body",
                        fields={"Idempotency-Key": ["already used with another body"]})
                if row is not None and row.state == "done":
                    return Replay(int(row.status_code), row.response)
                # Held, and the key has no row, or one an earlier release's request left.
                if hold is not None and (row is None or self._expired(row.created_at)):
                    claim = Claim(key_id, key, digest, now_text(),
                                  None if row is None else row.created_at, hold)
                    hold = None  # the claim's now
                    return claim
            finally:
                if hold is not None:
                    _let_go_quietly(hold)
            if time.monotonic() > deadline:
                raise InProgress("a request with this Idempotency-Key is still in "
                                 "progress; retry later")
            time.sleep(self.poll_s)

    def _expired(self, claimed_at: str) -> bool:
        moment = time_of(claimed_at)
        return moment is not None and (
            datetime.now(UTC) - moment > timedelta(seconds=self.expiry_s))

    def _row(self, key_id: str, key: str):
        with self.engine.connect() as conn:
            return conn.execute(select(_T).where(_T.c.key_id == key_id,
                                                 _T.c.idempotency_key == key)).first()

    def complete(self, conn: Connection, claim: Claim, application_id: str, status: int,
                 response: str) -> None:
        """Write the key's row with the answer's JSON text, in the decision's transaction.

        Raises ClaimLost if another request's row holds the key; the caller's transaction
        must then roll back.
        """
        values = {"key_id": claim.key_id, "idempotency_key": claim.key,
                  "body_hash": claim.digest, "state": "done",
                  "application_id": application_id, "status_code": status,
                  "response": response, "created_at": claim.claimed_at}
        if conn.execute(_INSERT_DONE[conn.dialect.name], values).rowcount == 1:
            return
        if claim.left_at is not None and conn.execute(
                update(_T).where(_T.c.key_id == claim.key_id,
                                     _T.c.idempotency_key == claim.key,
                                     _T.c.state == "in_progress",
                                     _T.c.created_at == claim.left_at)
                .values(values)).rowcount == 1:
            log.warning("an expired Idempotency-Key claim of an earlier release was taken "
                        "over", extra={"key_id": claim.key_id, "claimed_at": claim.left_at})
            return
        raise ClaimLost(f"another request's row holds the Idempotency-Key claimed at "
                        f"{claim.claimed_at}")

    def release(self, claim: Claim) -> None:
        """Let the key go, once its decision is committed or has failed; never raises."""
        if claim.hold is not None:
            _let_go_quietly(claim.hold)

    def close(self) -> None:
        """Close the lock connections (PostgreSQL); the store's disposal does it as well."""
        if isinstance(self._locks, AdvisoryKeyLocks):
            self._locks.close()

    def purge(self, now: datetime | None = None) -> int:
        """Delete the keys past their retention period, and expired claims; return how many.

        A row still ``in_progress`` past its expiry was left by a request of an earlier
        release that died: once it is gone a retry claims the key afresh.
        """
        now = now or datetime.now(UTC)
        kept_from = now_text(now - timedelta(seconds=self.retention_s))
        live_from = now_text(now - timedelta(seconds=self.expiry_s))
        with write_transaction(self.engine) as conn:
            return int(conn.execute(delete(_T).where(or_(
                _T.c.created_at < kept_from,
                and_(_T.c.state == "in_progress", _T.c.created_at < live_from)))).rowcount)

    def _purge_now_and_then(self) -> None:
        """Purge at most once every ``purge_every_s`` in this worker; never fail a claim."""
        now = time.monotonic()
        if (now - self._last_purge < self.purge_every_s
                or not self._purge_lock.acquire(blocking=False)):
            return
        try:
            if now - self._last_purge < self.purge_every_s:
                return
            self._last_purge = now
            purged = self.purge()
            if purged:
                log.info("purged %d Idempotency-Keys past their retention or expiry", purged)
        except Exception:  # the claim matters more; the next purge will catch up
            log.warning("could not purge expired Idempotency-Keys", exc_info=True)
        finally:
            self._purge_lock.release()


def _let_go_quietly(hold: Hold) -> None:
    try:
        hold.let_go()
    except Exception:  # the lock goes with its connection or its process at the latest
        log.error("could not let an Idempotency-Key's lock go", exc_info=True)
