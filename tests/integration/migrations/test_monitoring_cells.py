"""Revision 0010, the monitoring roll-up: up from 0009, down to it with everything else kept,
up again; and the upsert adds to a cell rather than replacing it, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, inspect, select

from service.persistence.migrations import (
    alembic_config,
    check,
    current_revision,
    head_revision,
    upgrade,
)
from service.persistence.tables import monitoring_cells
from service.usecases.monitoring.rollup import Rollup, compacted_mark, sums

AT = datetime(2026, 11, 29, 10, 7, tzinfo=UTC)


def buckets(conn) -> list[str]:
    return sorted(r.bucket for r in conn.execute(
        select(monitoring_cells.c.bucket).where(monitoring_cells.c.key == "approved")))


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
    expected = {("outcome", "approved"): (3, 50000.0), ("outcome", "declined"): (1, 0.0)}
    with engine.connect() as conn:
        # Not yet compacted: the hour and the day are read from the five-minute bucket.
        assert sums(conn, "hour", "2026-11-29T10", "2026-11-29T10") == expected
        assert sums(conn, "day", "2026-11-29", "2026-11-29") == expected
        assert buckets(conn) == ["2026-11-29T10:05"]
    # The first write of the next five minutes adds the ones before into their hour and day.
    with engine.begin() as conn:
        rollup.add(conn, {("outcome", "approved"): [1, 10000.0]}, AT + timedelta(minutes=5))
    with engine.connect() as conn:
        assert buckets(conn) == ["2026-11-29", "2026-11-29T10", "2026-11-29T10:05",
                                 "2026-11-29T10:10"]
        assert sums(conn, "hour", "2026-11-29T10", "2026-11-29T10")[
            ("outcome", "approved")] == (4, 60000.0)
        assert sums(conn, "5m", "2026-11-29T10:05", "2026-11-29T10:10")[
            ("outcome", "approved")] == (4, 60000.0)
    assert {"ix_monitoring_cells_series"} <= {
        i["name"] for i in inspect(engine).get_indexes("monitoring_cells")}
    assert "ix_reviews_resolved" in {i["name"] for i in inspect(engine).get_indexes("reviews")}

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009")
    assert current_revision(engine) == "0009"
    assert not {"monitoring_cells", "monitoring_marks"} & set(inspect(engine).get_table_names())
    assert "ix_reviews_resolved" not in {
        i["name"] for i in inspect(engine).get_indexes("reviews")}
    upgrade(database_url)
    assert current_revision(engine) == head_revision()
    check(engine)


def test_a_write_behind_the_compaction_mark_is_counted_once_in_every_grain(database_url: str,
                                                                          engine: Engine):
    upgrade(database_url)
    rollup = Rollup()
    with engine.begin() as conn:
        rollup.add(conn, {("outcome", "approved"): [1, 1.0]}, AT + timedelta(minutes=10))
    # Another host, its clock five minutes behind, writes into a bucket the mark has passed.
    behind = Rollup()
    with engine.begin() as conn:
        behind.add(conn, {("outcome", "approved"): [2, 2.0]}, AT)
    with engine.connect() as conn:
        assert compacted_mark(conn) == "2026-11-29T10:15"
        for grain, first, last in (("5m", "2026-11-29T10:05", "2026-11-29T10:15"),
                                   ("hour", "2026-11-29T10", "2026-11-29T10"),
                                   ("day", "2026-11-29", "2026-11-29")):
            assert sums(conn, grain, first, last) == {("outcome", "approved"): (3, 3.0)}, grain
