"""Checking ``strategy_plans`` against the ``strategy.set`` records that set each plan.

Each row must hold what its record states, judged as the strategy book judges the newest row
before adopting it (``service.usecases.plan_records.plan_row_refusal``): the plan, who set it, why,
when, the record's seq, and the plan before it. A row is matched to the record that names
it (records written before records named their row: to the record its ``audit_seq`` names);
a row naming a record another row already holds, a row without a record, and a record
without a row are differences. A record not signed after a signed one is a difference; a
signature is verified only when the check is given the service's public key
(``table_checkers(public_key)``, as ``flashloan audit verify`` does). Plan changes are rare:
the table and its records are read whole.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from service.persistence.tables import strategy_plans
from service.usecases.plan_records import (
    STRATEGY_KIND,
    first_signed,
    newest_plan_record,
    plan_records,
    plan_row_refusal,
    read_record,
    stated_seq,
)
from service.usecases.table_checks.base import TableCheck, Tally
from service.usecases.table_checks.records import PURGED_NOTE

_ROWS = select(strategy_plans).order_by(strategy_plans.c.seq)


def check_strategy_plans(conn: Connection, *,
                         public_key: Ed25519PublicKey | str | None = None) -> TableCheck:
    """Check each plan row against its ``strategy.set`` record, and each record against a
    row; signatures under ``public_key`` (a key, or its hex) when given."""
    key = _public(public_key)
    tally = Tally("strategy_plans")
    # Read before the rows: a change committed meanwhile has its record above this one,
    # so it is never taken for a record without a row.
    head = newest_plan_record(conn) or 0
    rows = conn.execute(_ROWS).all()
    records = plan_records(conn)
    first = first_signed(records)
    by_seq = {record.seq: record for record in records}
    by_row: dict[int, Any] = {}
    for record in records:
        if (named := stated_seq(record)) is not None:
            by_row.setdefault(named, record)
    held: dict[int, int] = {}   # record seq -> the row that holds it
    previous = 0
    for row in rows:
        record = (by_row.get(row.seq) or by_seq.get(row.audit_seq)
                  # A record of another kind, or none: read alone, only when tampered.
                  or read_record(conn, row.audit_seq))
        _check(tally, row, record, previous, held, (first, key))
        if record is not None:
            held.setdefault(record.seq, row.seq)
        previous = row.seq
    for record in records:
        if record.seq <= head and record.seq not in held:
            named = stated_seq(record)
            tally.differ("-" if named is None else str(named),
                         f"record {record.seq} sets a plan"
                         f"{'' if named is None else f' {named}'} that has no row", record.seq)
    return tally.verdict(PURGED_NOTE)


def _public(value: Ed25519PublicKey | str | None) -> Ed25519PublicKey | None:
    if not isinstance(value, str):
        return value
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
    except ValueError:
        # Not a key: the chain's own verification says so; the table is checked unsigned.
        return None


def _check(tally: Tally, row: Any, record: Any, previous: int, held: dict[int, int],
           signed: tuple[int | None, Ed25519PublicKey | None]) -> None:
    if record is not None and record.seq in held:
        tally.checked += 1
        tally.differ(str(row.seq), f"plan {row.seq} names record {record.seq}, which is plan "
                                   f"{held[record.seq]}'s", record.seq)
        return
    if record is not None and record.kind == STRATEGY_KIND and record.payload is None:
        tally.unchecked += 1
        return
    tally.checked += 1
    refusal = plan_row_refusal(row, record, previous, first_signed=signed[0],
                               public_key=signed[1])
    if refusal is not None:
        tally.differ(str(row.seq), refusal.problem, None if record is None else record.seq)
