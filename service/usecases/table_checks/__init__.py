"""Checks of the tables that figures and decisions read against the audit records they derive
from (``flashloan audit verify --tables``, ``GET /v1/audit/verify?tables=true``, the console's
verify page)."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Engine

from service.usecases.table_checks.base import (
    LISTED,
    RowDifference,
    TableCheck,
    TableChecker,
    Tally,
    snapshot,
)

__all__ = ["LISTED", "RowDifference", "TableCheck", "TableChecker", "Tally", "check_tables",
           "table_checkers"]


def table_checkers(public_key: Any = None) -> dict[str, TableChecker]:
    """Every table that can be checked against the log, with its check; ``public_key`` (the
    service's, as hex or a key) lets a check verify what the service signed."""
    # Imported here, so that a check's module may import this package's names.
    from service.usecases.table_checks.applications import check_applications
    from service.usecases.table_checks.backtests import check_backtests
    from service.usecases.table_checks.loans import check_loan_performance, check_loans
    from service.usecases.table_checks.strategy_plans import check_strategy_plans

    checkers: dict[str, TableChecker] = {}
    # Each check registers here, one line each.
    checkers["applications"] = check_applications
    checkers["loans"] = check_loans
    checkers["loan_performance"] = check_loan_performance
    checkers["backtests"] = check_backtests
    checkers["strategy_plans"] = partial(check_strategy_plans, public_key=public_key)
    return checkers


def check_tables(engine: Engine, tables: list[str] | None = None, *,
                 public_key: Any = None) -> list[TableCheck]:
    """Check ``tables`` (all by default) against the log, in a stable order, all as the
    database stood at one moment; signatures under ``public_key`` when given."""
    checkers = table_checkers(public_key)
    names = list(checkers) if tables is None else tables
    with snapshot(engine) as conn:
        return [checkers[name](conn) for name in names]
