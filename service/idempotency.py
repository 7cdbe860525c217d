"""Idempotency keys: a retry with the same body gets the first answer; another body gets a 409.

A request claims its key (a row ``in_progress`` whose ``created_at`` is the claim's token)
before deciding, and completes it in the decision's own transaction. A claim lives at most
``expiry_s`` — the gathering deadline plus the commit timeout, the longest a live request
takes to decide or give up: a worker killed, or a database lost, between the claim and the
commit leaves a claim that the next retry with the same body takes over once it is older
than that. The takeover is a conditional UPDATE of the token, so of two retries racing for
it one wins; the request that held the claim before can then neither complete it (its
transaction is rolled back: one decision per key) nor release it.

Keys are kept ``retention_s`` (``FLASHLOAN_IDEMPOTENCY_RETENTION_H``, 24 h by default) from
their claim, then purged, and expired claims with them: each worker purges at most once every
``purge_every_s`` (a minute), on a claim, so no scheduler is needed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from audit.canonical import canonical_json
from service.db import idempotency_keys, now_text, time_of, write_transaction
from service.errors import ApiError

log = logging.getLogger("flashloan.idempotency")

_T = idempotency_keys

DEFAULT_RETENTION_S = 24 * 3600.0
PURGE_EVERY_S = 60.0


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
    """A key this request holds: only the holder of ``token`` may complete or release it."""

    key_id: str
    key: str
    token: str  # the claim row's created_at when this request claimed or took it over


class ClaimLost(Exception):
    """The claim expired and another request took it over: this decision must not commit."""


class IdempotencyKeys:
    """Claims keys before deciding; completes them in the decision's own transaction."""

    def __init__(self, engine: Engine, *, expiry_s: float,
                 retention_s: float = DEFAULT_RETENTION_S, wait_s: float = 30.0,
                 poll_s: float = 0.05, purge_every_s: float = PURGE_EVERY_S) -> None:
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

    def claim(self, key_id: str, key: str, digest: str) -> Replay | Claim:
        """Claim ``key`` for this body; return the stored answer if it was already decided.

        A concurrent duplicate waits (up to ``wait_s``) for the first request to finish and
        gets its answer, or takes the claim over once it has expired.
        """
        self._purge_now_and_then()
        deadline = time.monotonic() + self.wait_s
        while True:
            token = now_text()
            try:
                with write_transaction(self.engine) as conn:
                    conn.execute(insert(_T).values(key_id=key_id, idempotency_key=key,
                                                   body_hash=digest, state="in_progress",
                                                   created_at=token))
                return Claim(key_id, key, token)
            except IntegrityError:
                pass
            while True:
                row = self._row(key_id, key)
                if row is None:
                    break  # the first request failed and released the key: claim it again
                if row.body_hash != digest:
                    raise ApiError(409, "this Idempotency-Key was used with a different body",
                                   fields={"Idempotency-Key": ["already used with another body"]})
                if row.state == "done":
                    return Replay(int(row.status_code), row.response)
                if self._expired(row.created_at):
                    taken = self.take_over(key_id, key, row.created_at)
                    if taken is not None:
                        return taken
                    continue  # another retry took it over, or its request completed it
                if time.monotonic() > deadline:
                    raise ApiError(409, "a request with this Idempotency-Key is still in "
                                   "progress; retry later", code="in_progress")
                time.sleep(self.poll_s)

    def take_over(self, key_id: str, key: str, claimed_at: str) -> Claim | None:
        """Take over the claim made at ``claimed_at``, unless another request did first."""
        token = now_text()
        with write_transaction(self.engine) as conn:
            taken = conn.execute(
                update(_T).where(_T.c.key_id == key_id, _T.c.idempotency_key == key,
                                 _T.c.state == "in_progress", _T.c.created_at == claimed_at)
                .values(created_at=token)).rowcount
        if taken != 1:
            return None
        log.warning("an expired Idempotency-Key claim was taken over",
                    extra={"key_id": key_id, "claimed_at": claimed_at})
        return Claim(key_id, key, token)

    def _expired(self, claimed_at: str) -> bool:
        moment = time_of(claimed_at)
        return moment is not None and (
            datetime.now(UTC) - moment > timedelta(seconds=self.expiry_s))

    def _row(self, key_id: str, key: str):
        with self.engine.connect() as conn:
            return conn.execute(select(_T).where(_T.c.key_id == key_id,
                                                 _T.c.idempotency_key == key)).first()

    @staticmethod
    def complete(conn: Connection, claim: Claim, application_id: str, status: int,
                 response: str) -> None:
        """Store the answer's JSON text, in the same transaction as the decision.

        Raises ClaimLost if the claim is no longer this request's; the caller's transaction
        must then roll back.
        """
        done = conn.execute(
            update(_T).where(_T.c.key_id == claim.key_id, _T.c.idempotency_key == claim.key,
                             _T.c.state == "in_progress", _T.c.created_at == claim.token)
            .values(state="done", application_id=application_id, status_code=status,
                    response=response)).rowcount
        if done != 1:
            raise ClaimLost(f"the claim of an Idempotency-Key made at {claim.token} expired "
                            "and was taken over")

    def release(self, claim: Claim) -> None:
        """Forget a claim whose request failed, so that a retry can decide."""
        with write_transaction(self.engine) as conn:
            conn.execute(delete(_T).where(_T.c.key_id == claim.key_id,
                                          _T.c.idempotency_key == claim.key,
                                          _T.c.state == "in_progress",
                                          _T.c.created_at == claim.token))

    def purge(self, now: datetime | None = None) -> int:
        """Delete the keys past their retention period, and expired claims; return how many.

        A claim still ``in_progress`` past its expiry was left by a request that died: a
        retry would take it over, and once it is gone a retry claims the key afresh.
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
