"""Checking ``loans`` and ``loan_performance`` against the ``outcome.recorded`` records.

Each post of a loan's outcome is one ``outcome.recorded`` record holding what the rows were
given: whether the loan was drawn (when, how much) and the months reported; a month posted
again replaces the one before, so the latest record stating a month holds. The loan's terms
are copied from the decision in force when the post was made: its latest ``decision.made``,
amended by any ``review.resolved`` that overturned or amended it; the loan was approved when
that decision was recorded, or when a review overturned a decline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from service.persistence.tables import loan_performance, loans
from service.usecases.table_checks.base import TableCheck, Tally
from service.usecases.table_checks.records import (
    DECISION_MADE,
    OUTCOME_RECORDED,
    PURGED_NOTE,
    REVIEW_RESOLVED,
    Stated,
    altered,
    compare,
    each_row,
    set_aside,
    walk,
)

_L = loans.c
_P = loan_performance.c
_LOAN_KINDS = (DECISION_MADE, REVIEW_RESOLVED, OUTCOME_RECORDED)


def check_loans(conn: Connection) -> TableCheck:
    """Check each loan against its outcome records and its decision, and each outcome record
    against a loan."""
    tally = Tally("loans")
    walk(conn, tally, _L.application_id, select(loans), _LOAN_KINDS,
         each_row(_check_loan, "records its outcome"), OUTCOME_RECORDED)
    return tally.verdict(PURGED_NOTE)


def _check_loan(tally: Tally, row: Any, records: list[Stated]) -> None:
    posts = [record for record in records if record.kind == OUTCOME_RECORDED]
    if not posts:
        tally.differ(row.application_id, "no outcome.recorded record accounts for it")
        return
    # The terms were copied when the latest post was made: later reviews are not in them.
    relevant = [record for record in records if record.seq <= posts[-1].seq]
    if set_aside(tally, row.application_id, relevant, "which it derives from"):
        return
    if not any(record.kind == DECISION_MADE for record in relevant):
        tally.differ(row.application_id, "no decision.made record states its terms")
        return
    compare(tally, row.application_id, row, stated_loan(relevant))


def stated_loan(records: Sequence[Stated]) -> dict[str, tuple[Any, int]]:
    """What a loan's row holds by its records up to its latest post (oldest first, none
    purged): each column with the seq of the record that fixes it."""
    expected: dict[str, tuple[Any, int]] = {}
    terms: dict[str, tuple[Any, int]] = {}
    decided = 0
    approved: tuple[Any, int] | None = None
    first_post = True
    for record in records:
        payload, seq = record.payload or {}, record.seq
        if record.kind == DECISION_MADE:
            terms = {name: (value, seq) for name, value in _mapping(payload.get("decision"))}
            decided, approved = seq, (record.recorded_at, seq)
        elif record.kind == REVIEW_RESOLVED:
            terms.update({name: (value, seq) for name, value in _mapping(payload.get("decision"))})
            if payload.get("resolution") == "overturned":
                # Records from before reviews stated the time they were resolved at leave it
                # unchecked.
                approved = (payload["resolved_at"], seq) if "resolved_at" in payload else None
        else:
            expected.update({name: (payload.get(name), seq)
                             for name in ("subject", "drawn", "drawn_at", "amount")})
            if "posted_at" in payload:
                expected["updated_at"] = (payload["posted_at"], seq)
                if first_post:
                    expected["recorded_at"] = (payload["posted_at"], seq)
            first_post = False
    for name in ("credit_limit", "grade"):
        if name in terms:
            expected[name] = terms[name]
    expected["pd"] = terms.get("pd", (None, decided))
    if approved is not None:
        expected["approved_at"] = approved
        expected["approved_month"] = (str(approved[0])[:7], approved[1])
    return expected


def check_loan_performance(conn: Connection) -> TableCheck:
    """Check each month of each loan against the latest record stating it, and each month
    a record states against a row."""
    tally = Tally("loan_performance")
    walk(conn, tally, _P.application_id, select(loan_performance).order_by(_P.month),
         (OUTCOME_RECORDED,), _check_months, OUTCOME_RECORDED)
    return tally.verdict(PURGED_NOTE)


def _check_months(tally: Tally, application_id: str, rows: list[Any],
                  posts: list[Stated]) -> None:
    bad = altered(posts)
    if bad is not None:
        for row in rows:
            tally.differ(f"{application_id}/{row.month}", f"record {bad.seq}, which it derives "
                         "from, does not match its payload_hash", bad.seq)
        return
    if any(post.payload is None for post in posts):
        tally.unchecked += len(rows)
        return
    expected = stated_months(posts)
    for row in rows:
        key = f"{application_id}/{row.month}"
        month = expected.pop(row.month, None)
        if month is None:
            tally.differ(key, "no outcome.recorded record states this month")
            continue
        compare(tally, key, row, month)
    for name, month in sorted(expected.items()):
        seq = month["status"][1]
        tally.differ(f"{application_id}/{name}", f"record {seq} states this month; there is "
                     "no row", seq)


def stated_months(posts: Sequence[Stated]) -> dict[str, dict[str, tuple[Any, int]]]:
    """Each month the posts state (oldest first, none purged), as the latest states it."""
    months: dict[str, dict[str, tuple[Any, int]]] = {}
    for post in posts:
        payload, seq = post.payload or {}, post.seq
        for entry in payload.get("months") or ():
            if not isinstance(entry, dict) or not isinstance(entry.get("month"), str):
                continue
            month = {"status": (entry.get("status"), seq),
                     "days_past_due": (entry.get("days_past_due"), seq)}
            if "posted_at" in payload:
                month["recorded_at"] = (payload["posted_at"], seq)
            months[entry["month"]] = month
    return months


def _mapping(value: Any) -> list[tuple[str, Any]]:
    """The items of a payload's object, none when it holds something else."""
    return list(value.items()) if isinstance(value, dict) else []
