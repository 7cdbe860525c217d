"""Idempotency keys: a retry with the same body gets the first answer; another body gets a 409."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from audit.canonical import canonical_json
from service.db import idempotency_keys, now_text, write_transaction
from service.errors import ApiError

_T = idempotency_keys


def body_hash(body: Any) -> str:
    """Return the digest of a request body, independent of key order and spacing."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    """A stored answer to return instead of deciding again."""

    status: int
    response: str  # the stored answer, JSON text


class IdempotencyKeys:
    """Claims keys before deciding; completes them in the decision's own transaction."""

    def __init__(self, engine: Engine, *, wait_s: float = 30.0, poll_s: float = 0.05) -> None:
        self.engine = engine
        self.wait_s = wait_s
        self.poll_s = poll_s

    def claim(self, key_id: str, key: str, digest: str) -> Replay | None:
        """Claim ``key`` for this body; return the stored answer if it was already decided.

        A concurrent duplicate waits for the first request to finish and gets its answer.
        """
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                with write_transaction(self.engine) as conn:
                    conn.execute(insert(_T).values(key_id=key_id, idempotency_key=key,
                                                   body_hash=digest, state="in_progress",
                                                   created_at=now_text()))
                return None
            except IntegrityError:
                pass
            row = self._row(key_id, key)
            if row is None:
                continue  # the first request failed and released the key: claim it again
            if row.body_hash != digest:
                raise ApiError(409, "this Idempotency-Key was used with a different body",
                               fields={"Idempotency-Key": ["already used with another body"]})
            if row.state == "done":
                return Replay(int(row.status_code), row.response)
            if time.monotonic() > deadline:
                raise ApiError(409, "a request with this Idempotency-Key is still in progress",
                               code="in_progress")
            time.sleep(self.poll_s)

    def _row(self, key_id: str, key: str):
        with self.engine.connect() as conn:
            return conn.execute(select(_T).where(_T.c.key_id == key_id,
                                                 _T.c.idempotency_key == key)).first()

    @staticmethod
    def complete(conn: Connection, key_id: str, key: str, application_id: str, status: int,
                 response: str) -> None:
        """Store the answer's JSON text, in the same transaction as the decision."""
        conn.execute(update(_T).where(_T.c.key_id == key_id, _T.c.idempotency_key == key)
                     .values(state="done", application_id=application_id, status_code=status,
                             response=response))

    def release(self, key_id: str, key: str) -> None:
        """Forget a claim whose request failed, so that a retry can decide."""
        with write_transaction(self.engine) as conn:
            conn.execute(delete(_T).where(_T.c.key_id == key_id, _T.c.idempotency_key == key,
                                          _T.c.state == "in_progress"))
