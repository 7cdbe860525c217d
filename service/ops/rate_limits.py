"""Rate limits, counted where every worker sees them: in Redis when one is configured, else in
a SQLite file under the host's var folder, which every worker process of the host shares.

Two limits, in fixed windows: requests per API key (``FLASHLOAN_RATE_LIMIT``; before
authentication, per client address), and failed authentications per client address
(``FLASHLOAN_AUTH_FAILURE_LIMIT``): a request with no key, a malformed one, an unknown one or a
wrong secret. Only failures are refused past it: a valid key from the same address is not.

Nothing here speaks HTTP: a count past its limit raises :class:`LimitExceeded`, counters that
cannot be reached raise :class:`CountersUnavailable`, and the web layer answers them
(``service.web.limits``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage, Storage

from service.ops.settings import Settings

log = logging.getLogger("flashloan.limits")

COUNTER_FILE = "rate-limits.sqlite3"
# Every call to Redis has a timeout: a stalled Redis must not stall the requests it counts.
REDIS_TIMEOUT_S = 2.0
STORAGE_RETRY_AFTER_S = 5


class LimitExceeded(Exception):
    """A count past its limit: ``message`` says which, ``retry_after_s`` when its window
    ends (at least one second)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class CountersUnavailable(Exception):
    """The counters' storage cannot be reached or is busy: retry after ``retry_after_s``."""

    def __init__(self, retry_after_s: int = STORAGE_RETRY_AFTER_S) -> None:
        super().__init__("the rate limits cannot be counted")
        self.retry_after_s = retry_after_s


class HostCounterStorage(Storage):
    """limits' fixed-window counters in a SQLite file, shared by the processes of one host.

    One connection per process (opened after the fork), guarded by a lock; each count is one
    UPSERT, so concurrent workers never lose a hit. Counters are not worth a disk flush: a
    crash forgets at most the current window.
    """

    STORAGE_SCHEME = None
    PURGE_EVERY_S = 60.0

    def __init__(self, path: Path, wrap_exceptions: bool = True) -> None:
        super().__init__(None, wrap_exceptions=wrap_exceptions)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._next_purge = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, "
                         "count INTEGER NOT NULL, expires_at REAL NOT NULL)")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _run(self, sql: str, *params: Any) -> list[tuple]:
        with self._lock:
            conn = self._connection()
            now = time.time()
            if now >= self._next_purge:
                self._next_purge = now + self.PURGE_EVERY_S
                conn.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
            return conn.execute(sql, params).fetchall()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        rows = self._run(
            "INSERT INTO counters (key, count, expires_at) VALUES (?1, ?2, ?3 + ?4) "
            "ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN expires_at <= ?3 THEN ?2 ELSE count + ?2 END, "
            "expires_at = CASE WHEN expires_at <= ?3 THEN ?3 + ?4 ELSE expires_at END "
            "RETURNING count", key, amount, now, expiry)
        return int(rows[0][0])

    def get(self, key: str) -> int:
        rows = self._run("SELECT count FROM counters WHERE key = ? AND expires_at > ?",
                         key, time.time())
        return int(rows[0][0]) if rows else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        rows = self._run("SELECT expires_at FROM counters WHERE key = ? AND expires_at > ?",
                         key, now)
        return float(rows[0][0]) if rows else now

    def check(self) -> bool:
        try:
            self._run("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return len(self._run("DELETE FROM counters RETURNING key"))

    def clear(self, key: str) -> None:
        self._run("DELETE FROM counters WHERE key = ?", key)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def build_storage(settings: Settings) -> Storage:
    """The counters' storage: Redis if configured, else the host's file under var/.

    Deployments sharing a Redis keep their counters apart: each counts under a name derived
    from its database.
    """
    if settings.redis_url:
        namespace = hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]
        return RedisStorage(settings.redis_url, key_prefix=f"flashloan:{namespace}",
                            wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT_S,
                            socket_connect_timeout=REDIS_TIMEOUT_S)
    return HostCounterStorage(settings.var_dir / COUNTER_FILE)


class RateLimits:
    """The deployment's rate limits, counted in shared storage."""

    def __init__(self, storage: Storage, *, per_key: str, auth_failures: str) -> None:
        self.storage = storage
        self.per_key = parse_many(per_key)
        self.auth_failures = parse_many(auth_failures)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(build_storage(settings), per_key=settings.rate_limit,
                   auth_failures=settings.auth_failure_limit)

    def count_request(self, caller: str) -> tuple[int, int] | None:
        """Count one request of ``caller`` (``key:<id>`` or ``address:<ip>``) and return the
        tightest allowance as ``(limit, remaining)`` (None without a limit); past the limit,
        raise :class:`LimitExceeded`."""
        remaining = None
        for item in self.per_key:
            key = item.key_for("requests", caller)
            count = self._storage(self.storage.incr, key, item.get_expiry())
            if count > item.amount:
                raise self._refusal(item, key, f"rate limit exceeded: at most {item} per API "
                                               "key")
            left = item.amount - count
            if remaining is None or left < remaining[1]:
                remaining = (item.amount, left)
        return remaining

    def count_failure(self, address: str) -> None:
        """Count a failed authentication from ``address``; past the limit, raise
        :class:`LimitExceeded`."""
        for item in self.auth_failures:
            key = item.key_for("auth-failures", address)
            if self._storage(self.storage.incr, key, item.get_expiry()) > item.amount:
                raise self._refusal(item, key, "too many failed authentications from this "
                                               "address")

    def close(self) -> None:
        close = getattr(self.storage, "close", None)
        if close is not None:
            close()

    def _refusal(self, item: RateLimitItem, key: str, message: str) -> LimitExceeded:
        reset = self._storage(self.storage.get_expiry, key)
        wait = max(1, math.ceil(reset - time.time()))
        return LimitExceeded(f"{message}; retry after {wait} s", wait)

    @staticmethod
    def _storage(operation: Callable[..., Any], *args: Any) -> Any:
        try:
            return operation(*args)
        except StorageError as exc:
            log.error("rate limits cannot be counted",
                      extra={"error_type": type(exc.storage_error).__name__})
            raise CountersUnavailable() from None
