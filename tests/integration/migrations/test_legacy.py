"""A database made by the earlier hand-written migrations is adopted, with its data intact."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from audit.engine import create_audit_engine
from audit.store import AuditStore
from service.cli.main import main
from service.persistence.migrations import (
    SchemaError,
    SchemaNotAtHead,
    check,
    current_revision,
    head_revision,
    require_head,
    upgrade,
)
from tests.integration.migrations.conftest import LegacyDatabase

ROWS = {
    "api_keys": 4,
    "consents": 6,
    "applications": 4,
    "idempotency_keys": 4,
    "reviews": 1,
}


def counts(url: str) -> dict[str, int]:
    engine = create_audit_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in (*ROWS, "audit_records", "audit_reason_codes")
            }
    finally:
        engine.dispose()


def test_the_earlier_schema_is_recognised_and_brought_to_head(legacy: LegacyDatabase) -> None:
    before = counts(legacy.url)
    assert {table: before[table] for table in ROWS} == ROWS
    assert before["audit_records"] == legacy.contents["records"]

    done = upgrade(legacy.url)

    assert (done.before, done.adopted, done.after) == (None, "0003", head_revision())
    assert counts(legacy.url) == before
    engine = create_audit_engine(legacy.url)
    try:
        assert "schema_migrations" not in inspect(engine).get_table_names()
        assert current_revision(engine) == require_head(engine)
    finally:
        engine.dispose()
    check(legacy.url)  # the adopted schema is exactly the models'
    assert upgrade(legacy.url).changed is False


def test_the_adopted_audit_chain_verifies_and_grows(legacy: LegacyDatabase) -> None:
    upgrade(legacy.url)
    store = AuditStore.from_url(legacy.url)
    try:
        result = store.verify()
        assert (result.ok, result.checked) == (True, legacy.contents["records"]), result
        assert store.head().record_hash == legacy.contents["head_hash"]
        kinds = {record.kind for record in store.iter_records()}
        assert {"consent.recorded", "decision.made", "review.requested"} <= kinds
        appended = store.append("outcome.posted", {"note": "after the upgrade"})
        assert appended.seq == legacy.contents["records"] + 1
        assert appended.prev_hash == legacy.contents["head_hash"]
        assert store.verify().ok
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM audit_records WHERE seq = 1")
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE audit_records SET kind = 'x.y' WHERE seq = 2")
    finally:
        store.dispose()


def test_the_service_serves_the_adopted_records(legacy: LegacyDatabase, tmp_path) -> None:
    from service.web.app import create_app

    with pytest.raises(SchemaNotAtHead, match="at revision none"):
        create_app(settings(legacy, tmp_path))
    upgrade(legacy.url)
    app = create_app(settings(legacy, tmp_path))
    try:
        http = app.test_client()
        keys = legacy.contents["keys"]
        channel = {"Authorization": f"Bearer {keys['channel']}"}
        for application in legacy.contents["applications"]:
            answer = http.get(f"/v1/applications/{application['application_id']}", headers=channel)
            assert answer.status_code == 200, answer.get_json()
            assert answer.get_json()["status"] == application["status"]
        first = legacy.contents["applications"][0]["application_id"]
        officer = {"Authorization": f"Bearer {keys['risk_officer']}"}
        explanation = http.get(f"/v1/applications/{first}/explanation", headers=officer)
        assert explanation.status_code == 200
        consent = legacy.contents["consents"][0]["consent_id"]
        assert http.get(f"/v1/consents/{consent}", headers=channel).status_code == 200
        auditor = {"Authorization": f"Bearer {keys['auditor']}"}
        verified = http.get("/v1/audit/verify", headers=auditor).get_json()
        assert verified["ok"] is True and verified["checked"] >= legacy.contents["records"]
        reviews = http.get("/v1/reviews", headers=officer).get_json()["items"]
        assert legacy.contents["review_id"] in {review["review_id"] for review in reviews}
    finally:
        app.extensions["flashloan"].close()


def settings(legacy: LegacyDatabase, tmp_path) -> dict[str, object]:
    return {
        "database_url": legacy.url,
        "env": "test",
        "var_dir": tmp_path,
        "pii_key": legacy.contents["pii_key"],
    }


def test_the_command_line_says_the_database_was_adopted(legacy: LegacyDatabase) -> None:
    result = CliRunner().invoke(
        main, ["db", "upgrade", "--database-url", legacy.url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        "database made by the earlier migrations recognised as revision 0003; "
        f"upgraded to {head_revision()} (head)\n"
    )


def test_an_unknown_ledger_is_refused_and_nothing_changes(legacy: LegacyDatabase) -> None:
    engine = create_audit_engine(legacy.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO schema_migrations (component, version, description, applied_at) "
                    "VALUES ('service', 3, 'never shipped', '2026-11-29T00:00:00.000000Z')"
                )
            )
        message = (
            "database was made by earlier migrations this code does not know "
            "(schema_migrations: audit 1, service 1, service 2, service 3)"
        )
        with pytest.raises(SchemaError, match=re.escape(message)):
            upgrade(legacy.url)
        tables = set(inspect(engine).get_table_names())
        assert "alembic_version" not in tables and "schema_migrations" in tables
    finally:
        engine.dispose()


def test_a_ledger_that_does_not_match_its_tables_is_refused(legacy: LegacyDatabase) -> None:
    engine = create_audit_engine(legacy.url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE reviews"))
            conn.execute(text("DROP INDEX ix_audit_records_actor"))
        with pytest.raises(SchemaError) as refused:
            upgrade(legacy.url)
        assert str(refused.value) == (
            "database's schema_migrations matches revision 0003, but its schema differs: "
            "table audit_records lacks indexes ['ix_audit_records_actor']; "
            "table reviews is missing"
        )
        assert "alembic_version" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_an_earlier_ledger_is_adopted_at_its_own_revision(legacy: LegacyDatabase) -> None:
    # A database whose service tables were made before review requests existed.
    engine = create_audit_engine(legacy.url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE reviews"))
            conn.execute(
                text("DELETE FROM schema_migrations WHERE component = 'service' AND version = 2")
            )
        done = upgrade(legacy.url)
        assert (done.adopted, done.after) == ("0002", head_revision())
        assert "reviews" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    check(legacy.url)
