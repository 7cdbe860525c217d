"""Checking ``applications`` against the records that decide each application.

Each ``decision.made`` (a retry's carries its ``attempt``) fixes the row's status, outcome,
grade, model version, who decided and ``decision_seq``; the first also fixes who applied
(subject, channel, key and consent). A ``review.resolved`` fixes status, outcome and who
decided, and, when it overturns or amends, the grade. Nothing else writes those columns (a
consent's withdrawal or expiry only erases the sealed applicant, which no record states).
The answer itself is checked against its hash by ``--applications``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from service.persistence.tables import applications
from service.usecases.table_checks.base import TableCheck, Tally
from service.usecases.table_checks.records import (
    DECISION_MADE,
    PURGED_NOTE,
    REVIEW_RESOLVED,
    Stated,
    compare,
    each_row,
    set_aside,
    walk,
)

_A = applications.c
_COLUMNS = (_A.application_id, _A.subject, _A.channel, _A.key_id, _A.consent_id, _A.status,
            _A.outcome, _A.grade, _A.model_version, _A.decided_by, _A.decision_seq)
_KINDS = (DECISION_MADE, REVIEW_RESOLVED)


def check_applications(conn: Connection) -> TableCheck:
    """Check each application's decided columns against its records, and each decision
    record against a row."""
    tally = Tally("applications")
    walk(conn, tally, _A.application_id, select(*_COLUMNS), _KINDS,
         each_row(_check, "decides it"), DECISION_MADE)
    return tally.verdict(PURGED_NOTE)


def _check(tally: Tally, row: Any, records: list[Stated]) -> None:
    if not any(record.kind == DECISION_MADE for record in records):
        tally.differ(row.application_id, "no decision.made record accounts for it")
        return
    if not set_aside(tally, row.application_id, records, "which decides it"):
        compare(tally, row.application_id, row, stated_application(records))


def stated_application(records: Sequence[Stated]) -> dict[str, tuple[Any, int]]:
    """What the application's row holds by its records (oldest first, none purged): each
    column with the seq of the record that fixes it."""
    expected: dict[str, tuple[Any, int]] = {}
    for record in records:
        payload, seq = record.payload or {}, record.seq
        if record.kind == DECISION_MADE:
            outcome = payload.get("outcome")
            decision = payload.get("decision")
            # A deferral has no grade, even once scored.
            grade = (decision.get("grade") if isinstance(decision, dict)
                     and outcome != "deferred" else None)
            expected.update(
                status=(outcome, seq), outcome=(outcome, seq), grade=(grade, seq),
                model_version=(payload.get("model_version"), seq),
                decided_by=(payload.get("decided_by", "model"), seq),
                decision_seq=(seq, seq))
            if payload.get("attempt", 1) == 1:
                expected.update({name: (payload[name], seq)
                                 for name in ("subject", "channel", "consent_id")
                                 if name in payload})
                if record.actor and ":" in record.actor:
                    expected["key_id"] = (record.actor.split(":", 1)[1], seq)
        elif record.kind == REVIEW_RESOLVED:
            if "outcome" in payload:
                expected["status"] = expected["outcome"] = (payload["outcome"], seq)
            if "decided_by" in payload:
                expected["decided_by"] = (payload["decided_by"], seq)
            change = payload.get("decision")
            if isinstance(change, dict) and "grade" in change:
                expected["grade"] = (change["grade"], seq)
    return expected
