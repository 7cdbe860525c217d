"""Workers never change the schema: one not at head is refused with one line naming the fix."""

from __future__ import annotations

import re
import stat

import pytest
from alembic import command
from click.testing import CliRunner

from audit.engine import create_audit_engine
from service.cli.main import main
from service.ops.settings import Settings
from service.persistence.migrations import SchemaNotAtHead, alembic_config, head_revision, upgrade


def refusal(current: str) -> str:
    return (
        f"database schema is at revision {current}, head is {head_revision()}: "
        'run "flashloan db upgrade"'
    )


def test_create_app_refuses_an_empty_database_and_creates_nothing(sqlite_url, tmp_path) -> None:
    from service.web.app import create_app

    with pytest.raises(SchemaNotAtHead) as refused:
        create_app({"database_url": sqlite_url, "env": "test", "var_dir": tmp_path})
    assert str(refused.value) == refusal("none")
    engine = create_audit_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert (
                conn.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).scalar_one()
                == 0
            )
    finally:
        engine.dispose()


def test_create_app_refuses_a_database_behind_head(database_url, tmp_path) -> None:
    from service.web.app import create_app

    engine = create_audit_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0002")
    finally:
        engine.dispose()
    settings = {"database_url": database_url, "env": "test", "var_dir": tmp_path}
    with pytest.raises(SchemaNotAtHead, match=re.escape(refusal("0002"))):
        create_app(settings)
    upgrade(database_url)
    app = create_app(settings)
    app.extensions["flashloan"].close()


def test_gunicorn_refuses_to_start_with_one_line(tmp_path) -> None:
    from tests.e2e.gunicorn_server import GunicornServer

    server = GunicornServer(
        "refused",
        tmp_path,
        {
            "FLASHLOAN_ENV": "development",
            "FLASHLOAN_DATABASE_URL": f"sqlite:///{tmp_path / 'flashloan.db'}",
        },
        workers=1,
    )
    server.spawn()
    assert server.process is not None
    try:
        code = server.process.wait(timeout=60)
    finally:
        server.stop()
    log = server.log_text()
    assert code == 1, log
    assert f"Error: {refusal('none')}\n" in log
    assert log.count("flashloan db upgrade") == 1 and "Traceback" not in log, log
    assert not (server.var_dir / "dev-keys.txt").exists()


def test_first_start_in_development_still_writes_the_keys(tmp_path) -> None:
    from service.web.bootstrap import prepare

    settings = Settings(
        env="development", database_url=f"sqlite:///{tmp_path / 'f.db'}", var_dir=tmp_path / "var"
    )
    with pytest.raises(SchemaNotAtHead, match=re.escape(refusal("none"))):
        prepare(settings, log=lambda line: None)
    upgrade(settings.database_url)
    said: list[str] = []
    prepare(settings, log=said.append)
    keys = settings.var_dir / "dev-keys.txt"
    roles = [line.split()[0] for line in keys.read_text().splitlines()[1:]]
    assert roles == ["channel", "risk_officer", "auditor", "admin", "servicing"]
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert said == [
        "created development API keys for channel, risk_officer, auditor, admin, servicing "
        f"in {keys}"
    ]
    prepare(settings, log=said.append)  # keys exist: nothing more is written or said
    assert len(said) == 1


def test_keys_create_refuses_a_database_not_at_head(sqlite_url, tmp_path) -> None:
    runner = CliRunner(
        env={
            "FLASHLOAN_DATABASE_URL": sqlite_url,
            "FLASHLOAN_ENV": "test",
            "FLASHLOAN_VAR_DIR": str(tmp_path),
        }
    )
    args = ["keys", "create", "--role", "auditor", "--name", "an auditor"]
    refused = runner.invoke(main, args, catch_exceptions=False)
    assert (refused.exit_code, refused.output) == (1, f"Error: {refusal('none')}\n")
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    made = runner.invoke(main, args, catch_exceptions=False)
    assert made.exit_code == 0, made.output
    assert made.output.splitlines()[-1].startswith("fl_")
