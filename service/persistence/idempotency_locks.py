"""The locks an Idempotency-Key is held by while its request decides; they write nothing.

- PostgreSQL: a session-level advisory lock, taken on a connection of its own (a pool beside
  the store's) and shared by every host on the database; the server lets it go when the
  session ends.
- SQLite (one host): a byte-range lock on a file beside the database, at a slot given by the
  key's hash, which the OS lets go with the process. Such a lock is the process's, not the
  thread's, so each process also keeps a table of the keys its threads hold.

:mod:`service.persistence.idempotency` decides what a held, free or written key means.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("flashloan.idempotency")

# Class id of the keys' advisory locks; audit.engine's chain and migration locks are
# 0x0A0D17 and 0x0A0D18. The second key hashes the schema with the key, as theirs does.
_KEY_LOCK = 0x0A_0D_19
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:class_id, hashtext("
                 "coalesce(current_schema(), '') || ' ' || :key_id || ' ' || :key))")
# The connection holds no other session lock: letting all go is letting the key go.
_UNLOCK = text("SELECT pg_advisory_unlock_all()")
_SLOTS = 1 << 20  # bytes of the SQLite lock file a key may lock; two keys may share one

class Hold:
    """A key's lock, held until :meth:`let_go` (once; later calls do nothing)."""

    __slots__ = ("_let_go",)

    def __init__(self, let_go: Callable[[], None]) -> None:
        self._let_go: Callable[[], None] | None = let_go

    def let_go(self) -> None:
        let_go, self._let_go = self._let_go, None
        if let_go is not None:
            let_go()



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


def _slot(key_id: str, key: str) -> int:
    named = f"{key_id}\n{key}".encode(errors="surrogatepass")
    digest = hashlib.blake2b(named, digest_size=8).digest()
    return int.from_bytes(digest, "big") % _SLOTS
