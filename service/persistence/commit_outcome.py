"""Finding out whether a decision whose COMMIT raised was committed after all.

The COMMIT of a decision's transaction can fail after the database made it durable (on
PostgreSQL, the connection drops once the server has written it): the application, its
``decision.made`` record and its completed Idempotency-Key are then there although the
commit raised. So before answering, the flow reads the application's row afresh:

- found: the decision was issued after all, and its stored answer is returned;
- not found: certainly nothing was committed — on PostgreSQL the read first takes the chain
  lock, which the failed transaction held until it ended, so a commit still finishing on
  the server cannot land after the read; on SQLite the failed transaction's connection is
  rolled back or closed before its error is raised;
- no answer from the database either: the outcome stays unknown (:class:`OutcomeUnknown`).
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from audit.engine import lock_chain
from service.persistence.tables import applications

LOOKUP_ATTEMPTS = 3
LOOKUP_PAUSE_S = 0.25
LOCK_TIMEOUT_S = 5.0

_READ_ANSWER = select(applications.c.answer)


class OutcomeUnknown(Exception):
    """Whether a decision was committed cannot be found out now (the database is unreachable)."""


def committed_answer(engine: Engine, application_id: str, *, attempts: int = LOOKUP_ATTEMPTS,
                     pause_s: float = LOOKUP_PAUSE_S,
                     lock_timeout_s: float = LOCK_TIMEOUT_S) -> str | None:
    """Return the stored answer of ``application_id`` if its decision was committed, else None.

    Tries ``attempts`` times, on a fresh connection each time (the pool replaces the one the
    failed commit lost), pausing a little longer before each new attempt. Raises
    OutcomeUnknown if no attempt could read the database.
    """
    failure: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause_s * attempt)
        try:
            with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    # The read must see what committed while it waited for the lock.
                    conn.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        lock_chain(conn, timeout_s=lock_timeout_s)
                    return conn.execute(_READ_ANSWER.where(
                        applications.c.application_id == application_id)).scalar_one_or_none()
        except (SQLAlchemyError, OSError) as exc:
            failure = exc
    raise OutcomeUnknown(f"could not find out whether application {application_id} was "
                         "committed") from failure
