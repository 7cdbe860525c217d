"""What checking a table against the audit records it derives from says.

A table that a figure or a decision reads (the applications' status, the loans and their
months, the strategy plans, the backtests) is written beside the audit record that states the
same fact. A check rebuilds what each row should hold from those records alone and compares:
a row that differs, a row no record accounts for, or a record with no row, is a difference,
named by its table and row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

# How many differing rows a verdict lists; the rest are counted.
LISTED = 20


@dataclass(frozen=True, slots=True)
class RowDifference:
    """One row that does not hold what its records state."""

    table: str
    row: str                # its key as a person reads it: "app_1f…", "app_1f…/2026-05"
    problem: str            # e.g. "status is 'approved'; record 42 states 'declined'"
    seq: int | None = None  # the record it was checked against, when there is one

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row": self.row, "problem": self.problem, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class TableCheck:
    """The verdict on one table: rows checked, and the differences (the first ``LISTED``)."""

    table: str
    checked: int
    differences: tuple[RowDifference, ...] = ()
    differing: int = 0      # how many differences in all, listed or not
    unchecked: int = 0      # rows that could not be checked (their records purged, say)
    note: str | None = None  # why rows were not checked, for a person

    @property
    def ok(self) -> bool:
        return self.differing == 0

    def message(self) -> str:
        """One line for a person."""
        if self.ok:
            text = (f"{self.table}: {self.checked} row{'' if self.checked == 1 else 's'} "
                    "match their records")
        else:
            first = self.differences[0]
            text = f"{self.table}: row {first.row}: {first.problem}"
            if self.differing > 1:
                text += f" ({self.differing - 1} more difference"
                text += f"{'' if self.differing == 2 else 's'})"
        if self.unchecked:
            text += f"; {self.unchecked} not checked" + (f" ({self.note})" if self.note else "")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "ok": self.ok, "checked": self.checked,
                "differing": self.differing, "unchecked": self.unchecked, "note": self.note,
                "message": self.message(),
                "differences": [d.to_dict() for d in self.differences]}


@dataclass
class Tally:
    """Differences found while walking a table, keeping the first ``LISTED``."""

    table: str
    checked: int = 0
    unchecked: int = 0
    differing: int = 0
    listed: list[RowDifference] = field(default_factory=list)

    def differ(self, row: str, problem: str, seq: int | None = None) -> None:
        self.differing += 1
        if len(self.listed) < LISTED:
            self.listed.append(RowDifference(self.table, row, problem, seq))

    def verdict(self, note: str | None = None) -> TableCheck:
        return TableCheck(self.table, self.checked, tuple(self.listed), self.differing,
                          self.unchecked, note if self.unchecked else None)


# A check reads the database (tables and audit records) through one connection, in one
# snapshot (:func:`snapshot`), and never writes.
TableChecker = Callable[[Connection], TableCheck]


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """Open a read-only transaction that sees the database as it was at its first read."""
    # Rows and the records they derive from are written together: read apart, a decision,
    # retry or backtest committed in between would show as a difference. PostgreSQL:
    # REPEATABLE READ keeps the first statement's snapshot. SQLite (WAL, BEGIN DEFERRED, see
    # audit.engine): a read transaction keeps the snapshot of its first read.
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        try:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn
        finally:
            conn.rollback()
