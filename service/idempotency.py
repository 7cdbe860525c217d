"""Idempotency keys: a retry with the same body gets the first answer; another body a conflict.

A request holds its key while it decides: a lock, which writes nothing. The key's row is
written once, ``done`` with the answer, by the decision's own transaction, so a keyed
decision costs no write transaction beyond the decision's. The lock is let go when the
request ends, and by the system when its holder dies, so a request killed mid-decision
leaves nothing behind and the next retry decides at once:

- PostgreSQL: a session-level advisory lock, taken on a connection of its own (a pool beside
  the store's) and shared by every host on the database; the server lets it go when the
  session ends;
- SQLite (one host): a byte-range lock on a file beside the database, at a slot given by the
  key's hash, which the OS lets go with the process. Such a lock is the process's, not the
  thread's, so each process also keeps a table of the keys its threads hold.

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

import errno
import fcntl
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from canonical import canonical_json
from service.db import idempotency_keys, now_text, time_of, write_transaction
from service.domain_errors import IdempotencyConflict, InProgress

log = logging.getLogger("flashloan.idempotency")

_T = idempotency_keys

DEFAULT_RETENTION_S = 24 * 3600.0
PURGE_EVERY_S = 60.0

# Class id of the keys' advisory locks; audit.engine's chain and migration locks are
# 0x0A0D17 and 0x0A0D18. The second key hashes the schema with the key, as theirs does.
_KEY_LOCK = 0x0A_0D_19
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:class_id, hashtext("
                 "coalesce(current_schema(), '') || ' ' || :key_id || ' ' || :key))")
# The connection holds no other session lock: letting all go is letting the key go.
_UNLOCK = text("SELECT pg_advisory_unlock_all()")
_SLOTS = 1 << 20  # bytes of the SQLite lock file a key may lock; two keys may share one

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


class Hold:
    """A key's lock, held until :meth:`let_go` (once; later calls do nothing)."""

    __slots__ = ("_let_go",)

    def __init__(self, let_go: Callable[[], None]) -> None:
        self._let_go: Callable[[], None] | None = let_go

    def let_go(self) -> None:
        let_go, self._let_go = self._let_go, None
        if let_go is not None:
            let_go()


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


class AdvisoryKeyLocks:
    """Keys held as PostgreSQL session locks, each on a connection it keeps until let go."""

    def __init__(self, engine: Engine, holders: int) -> None:
        # A pool of its own: a request holds its lock connection while it takes others from
        # the store's pool, so sharing one pool could leave none for the requests holding.
        # Autocommit: the connection idles between the lock and its release, in no
        # transaction.
        self._engine = create_engine(engine.url, pool_size=holders, max_overflow=-1,
                                     isolation_level="AUTOCOMMIT")
        event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def hold(self, key_id: str, key: str) -> Hold | None:
        """Take the key's lock if no session holds it; None if one does."""
        params = {"class_id": _KEY_LOCK, "key_id": key_id, "key": key}
        try:
            return self._try(params)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return self._try(params)  # a pooled connection the server had closed: once more

    def _try(self, params: dict[str, Any]) -> Hold | None:
        conn = self._engine.connect()
        try:
            held = bool(conn.execute(_TRY_LOCK, params).scalar_one())
        except BaseException:
            conn.close()
            raise
        if held:
            return Hold(partial(self._let_go, conn))
        conn.close()
        return None

    @staticmethod
    def _let_go(conn: Connection) -> None:
        try:
            conn.execute(_UNLOCK)
        except Exception:
            # Ending the session lets its locks go: the connection is not pooled again.
            conn.invalidate()
            raise
        finally:
            conn.close()

    def close(self) -> None:
        self._engine.dispose()


class FileKeyLocks:
    """Keys held by this process on one SQLite database: a table for its threads, and a
    byte-range lock on a file beside the database for the host's other processes.

    One per database file and process (:func:`file_key_locks`), since the OS keeps such
    locks by process and file, and lets them all go when the process closes any descriptor
    of the file: the file is open only while this process holds a key.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._pid = os.getpid()
        self._held: set[tuple[str, str]] = set()
        self._slots: dict[int, int] = {}  # slot → how many keys of this process hold it
        self._fd: int | None = None

    def hold(self, key_id: str, key: str) -> Hold | None:
        """Take the key's lock if neither this process nor another holds it; else None."""
        name, slot = (key_id, key), _slot(key_id, key)
        with self._mutex:
            if self._pid != os.getpid():  # a forked child holds none of its parent's locks
                if self._fd is not None:
                    os.close(self._fd)
                self._pid, self._held, self._slots, self._fd = os.getpid(), set(), {}, None
            if name in self._held or (not self._slots.get(slot) and not self._lock(slot)):
                return None
            self._held.add(name)
            self._slots[slot] = self._slots.get(slot, 0) + 1
        return Hold(partial(self._let_go, name, slot))

    def _lock(self, slot: int) -> bool:
        if self._fd is None:
            self._fd = self._open()
            if self._fd is None:
                return True  # no lock file: the table keeps this process's threads apart
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):  # another process holds the byte
                self._close_if_idle()
                return False
            self._cannot_lock(exc)
        return True

    def _open(self) -> int | None:
        if self.path is None:
            return None
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            self._cannot_lock(exc)
            return None

    def _cannot_lock(self, exc: OSError) -> None:
        # The row's primary key still gives one decision per key; a duplicate in another
        # process may then hear 409 in_progress instead of waiting for the answer.
        if self.path not in _WARNED:
            _WARNED.add(str(self.path))
            log.warning("cannot lock the Idempotency-Key lock file %s (%s); keys are held by "
                        "each process alone", self.path, type(exc).__name__)

    def _let_go(self, name: tuple[str, str], slot: int) -> None:
        with self._mutex:
            if self._pid != os.getpid() or name not in self._held:
                return
            self._held.discard(name)
            self._slots[slot] -= 1
            if self._slots[slot]:
                return  # another key of this process hashes to the same byte
            del self._slots[slot]
            if self._fd is not None and self._slots:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, slot)
            self._close_if_idle()

    def _close_if_idle(self) -> None:
        if self._fd is not None and not self._slots:
            os.close(self._fd)  # lets go every lock of this process on the file
            self._fd = None


# Module-level by necessity: a byte-range lock belongs to the process, so the threads of one
# process must share one table per database file, whichever app or engine they serve.
_FILE_LOCKS: dict[str, FileKeyLocks] = {}
_FILE_LOCKS_GUARD = threading.Lock()
_WARNED: set[str] = set()


def file_key_locks(engine: Engine) -> FileKeyLocks:
    """This process's key locks on the SQLite database of ``engine``."""
    database = engine.url.database or ""
    path = (None if not database or database == ":memory:" or database.startswith("file:")
            else str(Path(database).expanduser().resolve()) + "-idempotency-locks")
    name = path or engine.url.render_as_string(hide_password=False)
    with _FILE_LOCKS_GUARD:
        locks = _FILE_LOCKS.get(name)
        if locks is None:
            locks = _FILE_LOCKS[name] = FileKeyLocks(path)
        return locks


def _let_go_quietly(hold: Hold) -> None:
    try:
        hold.let_go()
    except Exception:  # the lock goes with its connection or its process at the latest
        log.error("could not let an Idempotency-Key's lock go", exc_info=True)


def _slot(key_id: str, key: str) -> int:
    named = f"{key_id}\n{key}".encode(errors="surrogatepass")
    digest = hashlib.blake2b(named, digest_size=8).digest()
    return int.from_bytes(digest, "big") % _SLOTS
