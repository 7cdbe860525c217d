"""``flashloan audit`` verify, export, checkpoint and purge against real databases."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.privacy import Pseudonymiser
from audit.store import AuditStore
from tests.integration.audit import tampering
from tests.integration.audit.conftest import PII_KEY

NATIONAL_ID = "11010519491231002X"


@pytest.fixture
def trail(make_store) -> AuditStore:
    """Six records, the first three from 2019."""
    store = make_store()
    subject = Pseudonymiser(PII_KEY).national_id(NATIONAL_ID)
    for i in range(6):
        store.append(
            "decision.made" if i % 2 else "application.received",
            {"i": i, "subject": subject if i < 2 else "c" * 64},
            application_id=f"app-{i}",
            actor="channel:key_ab12",
            recorded_at=datetime(2019 if i < 3 else 2030, 1, 1 + i, tzinfo=UTC),
        )
    return store


def test_verify_exits_zero_on_an_intact_chain(cli, trail: AuditStore) -> None:
    result = cli("verify")
    assert result.exit_code == 0, result.output
    assert "6 records intact" in result.output


def test_verify_exits_one_and_names_the_record_on_a_tampered_chain(cli, trail) -> None:
    tampering.drop_guards(trail.engine)
    tampering.execute(trail.engine, "UPDATE audit_records SET kind = 'x.y' WHERE seq = 4")
    result = cli("verify")
    assert result.exit_code == 1
    assert "BROKEN at record 4: record_altered" in result.output
    as_json = cli("verify", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.output) | {"message": ""} == {
        "ok": False,
        "checked": 3,
        "first_bad_seq": 4,
        "reason": "record_altered",
        "message": "",
        "checkpoint_held": None,
        "checkpoint_failed": None,
        "checkpoints": 0,
        "checkpoints_ignored": 0,
        "warning": None,
        "applications": None,
        "tables": None,
    }


def test_verify_range(cli, trail) -> None:
    result = cli("verify", "--start", "2", "--end", "4", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["checked"] == 3


def test_checkpoint_writes_a_file_that_catches_truncation(cli, trail, tmp_path: Path) -> None:
    made = cli("checkpoint")
    assert made.exit_code == 0, made.output
    path = tmp_path / "var" / "checkpoints" / f"6-{trail.chain_id()[:16]}.json"
    assert made.output.strip().endswith(str(path))
    assert json.loads(path.read_text())["seq"] == 6
    assert (tmp_path / "var" / "signing-key.pem").stat().st_mode & 0o777 == 0o600
    assert cli("verify", "--checkpoint", str(path)).exit_code == 0

    tampering.drop_guards(trail.engine)
    tampering.execute(trail.engine, "DELETE FROM audit_records WHERE seq >= 5")
    assert cli("verify", "--no-service-checkpoints").exit_code == 0
    caught = cli("verify", "--no-service-checkpoints", "--checkpoint", str(path.parent))
    assert caught.exit_code == 1
    assert "BROKEN at record 1: records_missing" in caught.output


def test_verify_uses_the_service_checkpoints_by_default(cli, trail, tmp_path: Path) -> None:
    assert cli("checkpoint").exit_code == 0
    intact = cli("verify")
    assert intact.exit_code == 0 and "1 checkpoint(s) extended" in intact.output
    tampering.drop_guards(trail.engine)
    tampering.execute(trail.engine, "DELETE FROM audit_records WHERE seq >= 5")
    caught = cli("verify")
    assert caught.exit_code == 1, caught.output
    assert "records_missing" in caught.output and "ends at record 4" in caught.output


def test_verify_pins_the_service_public_key_by_default(cli, trail, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.checkpoints import public_key_hex, sign_checkpoint, write_checkpoint

    assert cli("checkpoint").exit_code == 0
    folder = tmp_path / "var" / "checkpoints"
    # A forger rewrites the log, then replaces the checkpoints with ones of their own key.
    tampering.drop_guards(trail.engine)
    tampering.rewrite_from(trail.engine, 3, '{"i":3,"forged":true}')
    for old in folder.glob("*.json"):
        old.unlink()
    forger = Ed25519PrivateKey.generate()
    write_checkpoint(sign_checkpoint(trail, forger), folder)
    caught = cli("verify")
    assert caught.exit_code == 1, caught.output
    assert "checkpoint_invalid" in caught.output
    named = cli("verify", "--public-key", public_key_hex(forger))
    assert named.exit_code == 0, "a key given on the command line is the one trusted"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--start", "10", "--end", "5"), "end must not be before start; got start 10, end 5"),
        (("--start", "7"), "start 7 is beyond the last record, 6"),
        (("--start", "99", "--end", "120"), "start 99 is beyond the last record, 6"),
    ],
)
def test_an_empty_or_inverted_range_is_a_usage_error(cli, trail, args, words) -> None:
    result = cli("verify", *args)
    assert result.exit_code == 2, result.output
    assert words in result.output and "OK" not in result.output


def test_checkpoint_of_an_empty_chain_is_refused(cli, make_store) -> None:
    make_store()
    result = cli("checkpoint")
    assert result.exit_code == 1
    assert "at least one record" in result.output


def test_verify_refuses_an_unreadable_checkpoint(cli, trail, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = cli("verify", "--checkpoint", str(bad))
    assert result.exit_code == 1
    assert "must be readable JSON" in result.output


def test_export_jsonl_to_a_file_with_filters(cli, trail, tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    result = cli("export", "--format", "jsonl", "--out", str(out), "--kind", "decision.made")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in out.read_text().splitlines()] == [2, 4, 6]


def test_export_csv_by_national_id(cli, trail) -> None:
    result = cli("export", "--format", "csv", "--national-id", NATIONAL_ID.lower())
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [row["seq"] for row in rows] == ["1", "2"]
    assert NATIONAL_ID not in result.output


def test_export_by_time_range(cli, trail) -> None:
    result = cli("export", "--since", "2019-01-02", "--until", "2030-01-05")
    assert [json.loads(line)["seq"] for line in result.output.splitlines()] == [2, 3, 4]


def test_export_refuses_a_malformed_national_id(cli, trail) -> None:
    result = cli("export", "--national-id", "123")
    assert result.exit_code == 2
    assert "national_id must be 17 digits" in result.output


def test_purge_clears_old_payloads_and_verify_still_passes(cli, trail) -> None:
    result = cli("purge", "--before", "2020-01-01")
    assert result.exit_code == 0, result.output
    assert "purged 3 payloads (records 1..3); recorded as record 7" in result.output
    assert [trail.get(seq).payload for seq in (1, 2, 3)] == [None] * 3
    assert trail.get(7).actor == "system:cli"
    assert cli("verify").exit_code == 0


def test_purge_inside_retention_is_refused(cli, trail) -> None:
    result = cli("purge", "--before", "2030-01-05")
    assert result.exit_code == 1
    assert "retention period of 5 years" in result.output
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert cli("purge", "--before", yesterday).exit_code == 1
    allowed = cli("purge", "--before", yesterday, "--retention-years", "0")
    assert allowed.exit_code == 0, allowed.output


def test_missing_tables_are_reported_not_traced(cli, database_url: str) -> None:
    result = cli("verify")
    assert result.exit_code == 1
    assert result.output.startswith("Error: database schema is at revision none, head is ")
    assert result.output.rstrip().endswith(': run "flashloan db upgrade"')


def test_bad_settings_are_reported(cli, trail) -> None:
    result = cli("verify", FLASHLOAN_ENV="staging")
    assert result.exit_code == 1
    assert "FLASHLOAN_ENV must be development, test or production" in result.output
