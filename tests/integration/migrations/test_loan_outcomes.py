"""Revision 0009, loan outcomes: up from 0008, down to it with everything else kept, up again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, insert, inspect, select

from service.persistence.migrations import (
    alembic_config,
    check,
    current_revision,
    head_revision,
    upgrade,
)
from service.persistence.tables import api_keys, loan_performance, loans

LOAN = {"application_id": "a_1", "subject": "0" * 64, "drawn": True,
        "drawn_at": "2026-11-29T10:00:00.000000Z", "amount": 5000.0, "credit_limit": 20000.0,
        "grade": "B", "pd": 0.031, "approved_at": "2026-11-29T09:00:00.000000Z",
        "approved_month": "2026-11", "recorded_at": "2026-11-29T10:00:00.000000Z",
        "updated_at": "2026-11-29T10:00:00.000000Z"}
KEY = {"key_id": "0123456789ab", "name": "kept", "role": "servicing", "secret_hash": "0" * 64,
       "created_at": "2026-11-29T08:00:00.000000Z"}


def test_loan_outcomes_come_and_go_with_their_revision(database_url: str, engine: Engine):
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0008")
    assert not {"loans", "loan_performance"} & set(inspect(engine).get_table_names())
    done = upgrade(database_url)
    assert (done.before, done.after) == ("0008", head_revision())
    with engine.begin() as conn:
        conn.execute(insert(api_keys).values(**KEY))
        conn.execute(insert(loans).values(**LOAN))
        conn.execute(insert(loan_performance).values(
            application_id="a_1", month="2026-11", status="past_due", days_past_due=3,
            recorded_at=LOAN["recorded_at"]))
    indexes = {i["name"] for t in ("loans", "loan_performance")
               for i in inspect(engine).get_indexes(t)}
    assert {"ix_loans_cohort", "ix_loan_performance_status"} <= indexes

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0008")
    assert current_revision(engine) == "0008"
    assert not {"loans", "loan_performance"} & set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(select(api_keys.c.name)).scalars().all() == ["kept"]

    assert upgrade(database_url).after == head_revision()
    check(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(loans)).all() == []
