"""Checks of the tables that figures and decisions read against the audit records they derive
from (``flashloan audit verify --tables``, ``GET /v1/audit/verify?tables=true``, the console's
verify page)."""

from __future__ import annotations

from sqlalchemy import Engine

from service.table_checks.base import LISTED, RowDifference, TableCheck, TableChecker, Tally

__all__ = ["LISTED", "RowDifference", "TableCheck", "TableChecker", "Tally", "check_tables",
           "table_checkers"]


def table_checkers() -> dict[str, TableChecker]:
    """Every table that can be checked against the log, with its check."""
    checkers: dict[str, TableChecker] = {}
    # Each check registers here, one line each.
    return checkers


def check_tables(engine: Engine, tables: list[str] | None = None) -> list[TableCheck]:
    """Check ``tables`` (all by default) against the log, in a stable order."""
    checkers = table_checkers()
    names = list(checkers) if tables is None else tables
    return [checkers[name](engine) for name in names]
