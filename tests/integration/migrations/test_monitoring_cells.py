"""Revision 0010, the monitoring roll-up: up from 0009, down to it with everything else kept,
up again; and the upsert adds to a cell rather than replacing it, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, inspect, select

from service.db import monitoring_cells
from service.migrations import alembic_config, check, current_revision, head_revision, upgrade
from service.monitoring.rollup import Rollup, sums

AT = datetime(2026, 11, 29, 10, 7, tzinfo=UTC)


def test_the_roll_up_comes_and_goes_with_its_revision(database_url: str, engine: Engine):
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0009")
    assert "monitoring_cells" not in inspect(engine).get_table_names()
    done = upgrade(database_url)
    assert (done.before, done.after) == ("0009", head_revision())
    rollup = Rollup()
    with engine.begin() as conn:
        rollup.add(conn, {("outcome", "approved"): [1, 20000.0]}, AT)
    with engine.begin() as conn:
        rollup.add(conn, {("outcome", "approved"): [2, 30000.0],
                          ("outcome", "declined"): [1, 0.0]}, AT)
    with engine.connect() as conn:
        assert sums(conn, "hour", "2026-11-29T10", "2026-11-29T10") == {
            ("outcome", "approved"): (3, 50000.0), ("outcome", "declined"): (1, 0.0)}
        # One row per grain and cell: 5 minutes, hour and day.
        grains = sorted(r.bucket for r in conn.execute(
            select(monitoring_cells.c.bucket).where(monitoring_cells.c.key == "approved")))
    assert grains == ["2026-11-29", "2026-11-29T10", "2026-11-29T10:05"]
    assert {"ix_monitoring_cells_series"} <= {
        i["name"] for i in inspect(engine).get_indexes("monitoring_cells")}
    assert "ix_reviews_resolved" in {i["name"] for i in inspect(engine).get_indexes("reviews")}

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009")
    assert current_revision(engine) == "0009"
    assert "monitoring_cells" not in inspect(engine).get_table_names()
    assert "ix_reviews_resolved" not in {
        i["name"] for i in inspect(engine).get_indexes("reviews")}
    upgrade(database_url)
    assert current_revision(engine) == head_revision()
    check(engine)
