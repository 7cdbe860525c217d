"""``flashloan db upgrade`` on empty databases: to head, once, under the lock, models matched."""

from __future__ import annotations

import multiprocessing
import re
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from audit.engine import create_audit_engine
from audit.schema import metadata as audit_metadata
from service.cli.main import main
from service.persistence.migrations import (
    SchemaError,
    SchemaNotAtHead,
    alembic_config,
    check,
    current_revision,
    head_revision,
    require_head,
    upgrade,
)
from service.persistence.tables import metadata as service_metadata
from tests.integration.migrations.conftest import backend_of

TABLES = {
    "alembic_version",
    "audit_records",
    "audit_reason_codes",
    "audit_checkpoints",
    "audit_development_key",
    "api_keys",
    "consents",
    "applications",
    "idempotency_keys",
    "reviews",
    "loans",
    "loan_performance",
    "monitoring_cells",
    "monitoring_marks",
    "strategy_plans",
    "backtests",
}


def db(*args: str) -> Any:
    return CliRunner().invoke(main, ["db", *args], catch_exceptions=False)


def schema_of(engine: Engine) -> dict[str, Any]:
    """Tables with their columns, indexes, unique constraints and foreign keys."""
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            sorted(u["name"] for u in inspector.get_unique_constraints(table)),
            [tuple(f["constrained_columns"]) for f in inspector.get_foreign_keys(table)],
        )
        for table in sorted(inspector.get_table_names())
    }


def test_an_empty_database_is_upgraded_to_head(database_url: str, engine: Engine) -> None:
    done = upgrade(database_url)
    assert (done.before, done.after, done.adopted, done.changed) == (
        None,
        head_revision(),
        None,
        True,
    )
    assert current_revision(engine) == head_revision() == require_head(engine)
    assert set(inspect(engine).get_table_names()) == TABLES


@pytest.mark.postgres
def test_on_postgresql_everything_lands_in_the_schema_of_the_search_path(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    engine = create_audit_engine(postgres_url)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            rows = conn.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_name = ANY(:names)"
                ),
                {"names": sorted(TABLES)},
            ).all()
            functions = conn.execute(
                text(
                    "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE p.proname IN ('audit_records_guard', 'audit_reason_codes_guard')"
                )
            ).all()
    finally:
        engine.dispose()
    assert schema.startswith("t_")
    assert {name for where, name in rows if where == schema} == TABLES
    assert "public" not in {where for where, _ in rows}
    assert schema in {where for (where,) in functions}
    assert "public" not in {where for (where,) in functions}


def test_upgrading_twice_changes_nothing(database_url: str, engine: Engine) -> None:
    first = db("upgrade", "--database-url", database_url)
    assert first.exit_code == 0, first.output
    assert (
        first.output == f"database schema upgraded from revision none to {head_revision()} (head)\n"
    )
    schema = schema_of(engine)
    second = db("upgrade", "--database-url", database_url)
    assert second.exit_code == 0, second.output
    assert second.output == (
        f"database schema is at revision {head_revision()} (head); nothing to do\n"
    )
    assert schema_of(engine) == schema


def test_current_says_where_the_schema_is(database_url: str, monkeypatch) -> None:
    monkeypatch.setenv("FLASHLOAN_DATABASE_URL", database_url)
    before = db("current")
    assert before.exit_code == 1
    assert before.output == (
        f"database schema is at revision none, head is {head_revision()}: "
        'run "flashloan db upgrade"\n'
    )
    assert db("upgrade").exit_code == 0
    after = db("current")
    assert (after.exit_code, after.output) == (
        0,
        f"database schema is at revision {head_revision()} (head)\n",
    )


def test_the_models_match_the_migrations(database_url: str, engine: Engine) -> None:
    upgrade(database_url)
    check(database_url)  # alembic's autogenerate comparison: raises on any difference
    assert db("check", "--database-url", database_url).exit_code == 0
    # Autogenerate does not compare the predicates of partial indexes: compare them here.
    dialect = engine.dialect
    key = f"{dialect.name}_where"
    reflected = {
        index["name"]: index["dialect_options"].get(key)
        for table in ("audit_records", "audit_reason_codes", "audit_checkpoints",
                      *service_metadata.tables)
        for index in inspect(engine).get_indexes(table)
        if "duplicates_constraint" not in index  # PostgreSQL's index behind a UNIQUE
    }
    declared = {
        index.name: index.dialect_options[dialect.name]["where"]
        for metadata in (audit_metadata, service_metadata)
        for table in metadata.tables.values()
        for index in table.indexes
    }
    assert set(declared) == set(reflected)
    partial = 0
    for name, where in declared.items():
        found = reflected[name]
        if where is None:
            assert found is None, name
            continue
        partial += 1
        expected = str(where.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        assert _predicate(str(found)) == _predicate(expected), name
    assert partial == 5


def _predicate(sql: str) -> str:
    return re.sub(r"[\s()]|audit_records\.", "", sql).lower()


def test_a_difference_between_models_and_database_is_found(
    database_url: str, engine: Engine
) -> None:
    from alembic.util.exc import AutogenerateDiffsDetected

    upgrade(database_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE reviews ADD COLUMN assignee VARCHAR(64)"))
    with pytest.raises(AutogenerateDiffsDetected, match="assignee"):
        check(database_url)
    result = db("check", "--database-url", database_url)
    assert result.exit_code == 1 and "assignee" in result.output


def test_the_append_only_guards_hold_on_an_upgraded_database(
    database_url: str, engine: Engine
) -> None:
    from audit.store import AuditStore

    upgrade(database_url)
    store = AuditStore(engine)
    with store.writer() as writer:
        writer.append("decision.made", {"outcome": "declined", "reason_codes": ["K01"]})
    for statement in (
        "UPDATE audit_records SET kind = 'x.y' WHERE seq = 1",
        "UPDATE audit_records SET payload = '{}' WHERE seq = 1",
        "UPDATE audit_records SET payload = NULL WHERE seq = 1",
        "DELETE FROM audit_records WHERE seq = 1",
        "UPDATE audit_reason_codes SET code = 'K02'",
        "DELETE FROM audit_reason_codes",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    if backend_of(database_url) == "postgresql":
        for table in ("audit_records", "audit_reason_codes"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {table} CASCADE")
    assert store.verify().ok and store.get(1).payload["reason_codes"] == ["K01"]


def test_the_revisions_downgrade_to_nothing_and_upgrade_again(
    database_url: str, engine: Engine
) -> None:
    upgrade(database_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert current_revision(engine) is None
    assert upgrade(database_url).after == head_revision()
    check(database_url)


def test_a_database_upgraded_by_newer_code_is_refused(database_url: str, engine: Engine) -> None:
    upgrade(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    message = (
        f"database schema is at revision 9999, which this code does not know "
        f"(head is {head_revision()}): it was upgraded by newer code"
    )
    with pytest.raises(SchemaError, match=re.escape(message)):
        upgrade(database_url)
    with pytest.raises(SchemaNotAtHead, match=re.escape(message)):
        require_head(engine)


def test_tables_without_any_schema_version_are_refused(database_url: str, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE consents (consent_id VARCHAR(40) PRIMARY KEY)"))
    with pytest.raises(SchemaError, match=r"has tables \(consents\) but no schema revision"):
        upgrade(database_url)
    assert set(inspect(engine).get_table_names()) == {"consents"}
    result = db("upgrade", "--database-url", database_url)
    assert result.exit_code == 1
    assert result.output.startswith("Error: database has tables (consents) but no schema")


def _upgrader(url: str, barrier: Any, results: Any) -> None:
    from service.persistence.migrations import upgrade

    barrier.wait(timeout=60)
    try:
        done = upgrade(url)
        results.put(("ok", done.before, done.after))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(("error", type(exc).__name__, str(exc)))


@pytest.mark.slow
def test_upgraders_starting_at_once_take_turns(database_url: str, engine: Engine) -> None:
    processes = 4
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_upgrader, args=(database_url, barrier, results))
        for _ in range(processes)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=60)
    head = head_revision()
    assert all(outcome[0] == "ok" for outcome in outcomes), outcomes
    # One found no revision and upgraded; the others waited for it and found the work done.
    assert sorted(before or "none" for _, before, _ in outcomes) == [head] * 3 + ["none"]
    assert {after for _, _, after in outcomes} == {head}
    assert current_revision(engine) == head
