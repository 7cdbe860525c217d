"""Reading a table and the audit records of its rows a page at a time, for the table checks.

A check walks its table in key order, ``PAGE`` keys at a time, and reads the records of those
keys only (by the index on ``application_id``), so memory holds one page whatever the table's
size. Records with no row are found by the database (an anti-join), streamed. All of it is
read on one connection, in one snapshot (:func:`service.usecases.table_checks.base.snapshot`).
:func:`walk` does both for a table keyed by application.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Select, exists, select

from audit.schema import audit_records
from service.usecases.table_checks.base import Tally

_R = audit_records.c
_COLUMNS = (_R.seq, _R.kind, _R.application_id, _R.recorded_at, _R.actor, _R.payload,
            _R.payload_hash)

# The record kinds the checks read. Spelt here rather than imported from the modules that
# write them, whose imports load the models.
DECISION_MADE = "decision.made"
REVIEW_RESOLVED = "review.resolved"
OUTCOME_RECORDED = "outcome.recorded"

# Keys per page: one IN list of this many, and the rows and records of those keys in memory.
PAGE = 500

PURGED_NOTE = "their audit records were purged under the retention policy"


@dataclass(frozen=True, slots=True)
class Stated:
    """One record as a check reads it; ``payload`` is None once purged."""

    seq: int
    kind: str
    recorded_at: str
    actor: str | None
    payload: dict[str, Any] | None
    intact: bool    # the payload still hashes to the record's payload_hash


# Checks the rows of one key (in the order the table's statement reads them) against its
# records, oldest first; a key with records and no row comes with no rows.
KeyCheck = Callable[[Tally, str, list[Any], list[Stated]], None]
# Checks one row against its records, oldest first.
RowCheck = Callable[[Tally, Any, list[Stated]], None]
# Reads a stored column of a row, by the name a check gives it.
Stored = Callable[[Any, str], Any]


def walk(conn: Connection, tally: Tally, key: Column, rows: Select, kinds: Sequence[str],
         check: KeyCheck, rowless_kind: str) -> None:
    """Check ``key``'s table a page of keys at a time: each key's rows (read by ``rows``)
    with its records of ``kinds``, then each key that records of ``rowless_kind`` name and
    no row holds, with those records."""
    for ids in key_pages(conn, key):
        found = conn.execute(rows.where(key.in_(ids))).all()
        stated = records_of(conn, ids, kinds)
        by_key: dict[str, list[Any]] = {}
        for row in found:
            by_key.setdefault(row._mapping[key.name], []).append(row)
        for name in ids:
            if name in by_key:
                check(tally, name, by_key[name], stated.get(name, []))
    rowless = rowless_records(conn, rowless_kind, key)
    for name, group in groupby(rowless, key=lambda pair: pair[0]):
        check(tally, name, [], [record for _, record in group])


def each_row(check_row: RowCheck, rowless: str) -> KeyCheck:
    """The check of a table with one row a key: ``check_row`` for the row, and for records
    with no row the difference "record N {rowless}; there is no row"."""
    def check(tally: Tally, key: str, rows: list[Any], records: list[Stated]) -> None:
        if not rows:
            seq = records[0].seq
            tally.differ(key, f"record {seq} {rowless}; there is no row", seq)
        for row in rows:
            check_row(tally, row, records)
    return check


def key_pages(conn: Connection, column: Column) -> Iterator[list[str]]:
    """Yield the distinct values of ``column`` in order, ``PAGE`` at a time."""
    after: str | None = None
    while True:
        statement = select(column).distinct().order_by(column).limit(PAGE)
        if after is not None:
            statement = statement.where(column > after)
        keys = list(conn.execute(statement).scalars())
        if keys:
            yield keys
        if len(keys) < PAGE:
            return
        after = keys[-1]


def records_of(conn: Connection, ids: list[str],
               kinds: Iterable[str]) -> dict[str, list[Stated]]:
    """Return the records of ``kinds`` of each application in ``ids``, oldest first."""
    statement = _records(_R.application_id.in_(ids), _R.kind.in_(list(kinds))).order_by(_R.seq)
    found: dict[str, list[Stated]] = {}
    for row in conn.execute(statement):
        found.setdefault(row.application_id, []).append(as_stated(row))
    return found


def records_of_kinds(conn: Connection, kinds: Iterable[str]) -> Iterator[Stated]:
    """Yield every record of ``kinds``, oldest first."""
    for row in conn.execute(_records(_R.kind.in_(list(kinds))).order_by(_R.seq)):
        yield as_stated(row)


def _records(*criteria: ColumnElement[bool]) -> Select:
    return select(*_COLUMNS).where(*criteria)


def as_stated(row: Any) -> Stated:
    """Read a row of ``audit_records`` as a check reads it: its payload parsed (an empty one,
    not intact, when it is not a JSON object) and checked against its hash."""
    if row.payload is None:
        return Stated(row.seq, row.kind, row.recorded_at, row.actor, None, True)
    intact = hashlib.sha256(row.payload.encode("utf-8")).hexdigest() == row.payload_hash
    try:
        payload = json.loads(row.payload)
    except ValueError:
        payload, intact = {}, False
    if not isinstance(payload, dict):
        payload, intact = {}, False
    return Stated(row.seq, row.kind, row.recorded_at, row.actor, payload, intact)


def rowless_records(conn: Connection, kind: str, key: Column) -> Iterator[tuple[str, Stated]]:
    """Yield (application id, record) of each record of ``kind`` whose application has no row
    in ``key``'s table, by application then seq, streamed."""
    statement = (_records(_R.kind == kind, _R.application_id.is_not(None),
                          ~exists().where(key == _R.application_id))
                 .order_by(_R.application_id, _R.seq))
    # Options of this statement only: set on the connection they would stay for the next.
    for row in conn.execute(statement, execution_options={"yield_per": PAGE}):
        yield row.application_id, as_stated(row)


def altered(records: Iterable[Stated]) -> Stated | None:
    """The first record whose payload no longer matches its hash, if any."""
    return next((r for r in records if not r.intact), None)


def set_aside(tally: Tally, key: str, records: Sequence[Stated], role: str) -> bool:
    """Say whether a row cannot be compared with ``records``, counting it: a difference when
    one no longer matches its hash (``role`` says what the record is to the row, e.g. "which
    decides it"), unchecked when one was purged."""
    bad = altered(records)
    if bad is not None:
        tally.differ(key, f"record {bad.seq}, {role}, does not match its payload_hash", bad.seq)
        return True
    if any(record.payload is None for record in records):
        tally.unchecked += 1
        return True
    return False


def compare(tally: Tally, key: str, row: Any, expected: dict[str, tuple[Any, int]]) -> None:
    """Count ``row`` checked, and a difference when its columns differ from ``expected``."""
    tally.checked += 1
    found = mismatches(row, expected)
    if found is not None:
        tally.differ(key, *found)


def same(stored: Any, stated: Any) -> bool:
    """Whether a column holds what a record states (numbers compared as numbers)."""
    if _number(stored) and _number(stated):
        return math.isclose(float(stored), float(stated), rel_tol=1e-12, abs_tol=1e-12)
    return bool(stored == stated)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def column(row: Any, name: str) -> Any:
    """The value ``row`` holds in its column ``name``."""
    return row._mapping[name]


def mismatches(row: Any, expected: dict[str, tuple[Any, int]],
               stored_as: Stored = column) -> tuple[str, int] | None:
    """Say which of ``row``'s columns differ from what records state, and the first
    record: ``expected`` maps a column to (value, seq of the record that states it), and
    ``stored_as`` reads what the row holds under that name."""
    problems: list[str] = []
    first: int | None = None
    for name, (value, seq) in expected.items():
        stored = stored_as(row, name)
        if not same(stored, value):
            problems.append(f"{name} is {stored!r}; record {seq} states {value!r}")
            first = seq if first is None else first
    if first is None:
        return None
    return "; ".join(problems), first
