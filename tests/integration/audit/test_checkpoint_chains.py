"""Checkpoints name the chain they sign: databases run from one var/ folder each verify
against their own, ignoring (and counting) the files of the other, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.canonical import canonical_json, format_time
from audit.checkpoints import load_signing_key, public_key_hex, write_checkpoint
from audit.schema import audit_checkpoints
from audit.store import AuditStore
from tests.databases import migrate
from tests.integration.audit import tampering


def fill(store: AuditStore, label: str, count: int) -> None:
    for i in range(count):
        store.append("decision.made", {"chain": label, "i": i}, application_id=f"{label}-{i}")


@pytest.fixture
def other(tmp_path: Path) -> Iterator[tuple[str, AuditStore]]:
    """A second database, run from the same var/ folder as the test database."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    migrate(url)
    store = AuditStore.from_url(url)
    yield url, store
    store.dispose()


def legacy_checkpoint(store: AuditStore, key: Ed25519PrivateKey) -> dict:
    """Sign the head as checkpoints were signed before they named their chain."""
    head = store.head()
    assert head is not None
    time = format_time(datetime.now(UTC), what="now")
    message = canonical_json({"record_hash": head.record_hash, "seq": head.seq, "time": time})
    return {"format": "flashloan.audit.checkpoint/1", "seq": head.seq,
            "record_hash": head.record_hash, "time": time, "public_key": public_key_hex(key),
            "signature": key.sign(message).hex()}


def test_databases_sharing_a_var_folder_each_verify_ignoring_the_others_files(cli, store,
                                                                             other) -> None:
    other_url, other_store = other
    fill(store, "a", 3)
    fill(other_store, "b", 3)  # the same seq: neither file may take the other's place
    assert cli("checkpoint").exit_code == 0
    made = cli("checkpoint", FLASHLOAN_DATABASE_URL=other_url)
    assert made.exit_code == 0, made.output
    for env in ({}, {"FLASHLOAN_DATABASE_URL": other_url}):
        result = cli("verify", **env)
        assert result.exit_code == 0, result.output
        assert result.output.startswith("OK: 3 records intact (1..3); 1 checkpoint(s) extended; "
                                        "1 checkpoint file(s) of another chain ignored")
    body = json.loads(cli("verify", "--json").output)
    assert (body["ok"], body["checkpoints"], body["checkpoints_ignored"]) == (True, 1, 1)


def test_a_checkpoint_of_this_chain_that_disagrees_still_breaks_verify(cli, store,
                                                                      other) -> None:
    other_url, other_store = other
    fill(store, "a", 4)
    fill(other_store, "b", 4)
    assert cli("checkpoint").exit_code == 0
    assert cli("checkpoint", FLASHLOAN_DATABASE_URL=other_url).exit_code == 0
    tampering.drop_guards(store.engine)
    tampering.rewrite_from(store.engine, 3, '{"forged":true}')
    result = cli("verify")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("BROKEN at record 1: checkpoint_mismatch: the chain was "
                                    "rewritten: record 4 is not the one signed")
    assert "(1 checkpoint file(s) of another chain ignored)" in result.output
    assert cli("verify", FLASHLOAN_DATABASE_URL=other_url).exit_code == 0


def test_a_chain_rebuilt_from_record_1_is_still_held_to_its_ledger(cli, store,
                                                                  tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    fill(store, "a", 3)
    signed = store.take_checkpoint(key)
    write_checkpoint(signed, tmp_path / "var" / "checkpoints")
    tampering.drop_guards(store.engine)
    tampering.rewrite_from(store.engine, 1, '{"forged":true}')
    # The rebuilt chain has a new first record, so a new name; its ledger keeps the old one.
    result = cli("verify", "--public-key", public_key_hex(key), "--json")
    body = json.loads(result.output)
    assert (result.exit_code, body["reason"], body["first_bad_seq"]) == (
        1, "checkpoint_mismatch", 1), body
    assert body["checkpoints_ignored"] == 0, "the file is the ledger's own checkpoint"


def test_checkpoints_signed_before_they_named_their_chain_still_verify(cli, store, other,
                                                                      tmp_path: Path) -> None:
    other_url, other_store = other
    var = tmp_path / "var"
    key = load_signing_key(None, var, production=False)  # the development key kept in var/
    fill(store, "a", 2)
    early = legacy_checkpoint(store, key)
    with store.engine.begin() as conn:
        conn.execute(audit_checkpoints.insert().values(
            {name: early[name] for name in ("seq", "record_hash", "time", "public_key",
                                            "signature")}))
    fill(store, "a", 1)
    fill(other_store, "b", 4)
    (var / "checkpoints").mkdir(parents=True)
    for name, chain in (("3.json", store), ("4.json", other_store)):
        (var / "checkpoints" / name).write_text(json.dumps(legacy_checkpoint(chain, key)))
    mine = cli("verify")
    assert mine.exit_code == 0, mine.output
    assert mine.output.startswith("OK: 3 records intact (1..3); 2 checkpoint(s) extended; "
                                  "1 checkpoint file(s) of another chain ignored")
    theirs = cli("verify", FLASHLOAN_DATABASE_URL=other_url)
    assert theirs.exit_code == 0, theirs.output
    assert "1 checkpoint(s) extended; 1 checkpoint file(s) of another chain ignored" in (
        theirs.output)
    # The ledger is this database's own: a checkpoint of the old format there still breaks.
    tampering.drop_guards(store.engine)
    tampering.rewrite_from(store.engine, 2, '{"forged":true}')
    broken = cli("verify", "--json")
    assert (broken.exit_code, json.loads(broken.output)["reason"]) == (1, "checkpoint_mismatch")


def test_one_development_key_is_recorded_per_database_and_never_in_production(
        store, tmp_path: Path) -> None:
    from sqlalchemy.exc import DBAPIError

    from audit.errors import CheckpointError

    with pytest.raises(CheckpointError, match="must be set in production"):
        store.signing_key(None, tmp_path / "a", production=True)
    assert not (tmp_path / "a").exists()
    first = store.signing_key(None, tmp_path / "a", production=False)
    second = store.signing_key(None, tmp_path / "b", production=False)
    assert public_key_hex(second) == public_key_hex(first)
    for statement in ("DELETE FROM audit_development_key",
                      "UPDATE audit_development_key SET seed = public_key"):
        with pytest.raises(DBAPIError, match="append-only"):
            tampering.execute(store.engine, statement)


PRODUCTION = {
    "FLASHLOAN_ENV": "production",
    "FLASHLOAN_PII_KEY": "Qm7f3Kx9-Lr2_Vb8Nc1Wd6Zt4Yh5Jg0Ps-Ea7Uo3Ri9",
    "FLASHLOAN_SIGNING_KEY": "ab" * 32,
    "FLASHLOAN_SOURCES": "http",
    "FLASHLOAN_SOURCES_URL": "https://sources.bank.internal",
}


def rebuild_from_record_1(store: AuditStore) -> None:
    """Rewrite the whole chain and empty the ledger, as an owner of the database can."""
    tampering.drop_guards(store.engine)
    tampering.rewrite_from(store.engine, 1, '{"forged":true}')
    if store.engine.dialect.name == "postgresql":
        tampering.execute(store.engine, "DROP TRIGGER audit_checkpoints_guard ON audit_checkpoints",
                          "DELETE FROM audit_checkpoints")
    else:
        tampering.execute(store.engine, "DROP TRIGGER audit_checkpoints_no_delete",
                          "DELETE FROM audit_checkpoints")


def test_in_production_a_chain_rebuilt_from_record_1_fails_on_the_services_files(
        cli, store, tmp_path: Path) -> None:
    key = load_signing_key(PRODUCTION["FLASHLOAN_SIGNING_KEY"], tmp_path, production=True)
    folder = tmp_path / "var" / "checkpoints"
    fill(store, "a", 2)
    folder.mkdir(parents=True)
    (folder / "2.json").write_text(json.dumps(legacy_checkpoint(store, key)))
    fill(store, "a", 1)
    signed = store.take_checkpoint(key)
    assert signed is not None and signed.chain_id is not None
    written = write_checkpoint(signed, folder)
    rebuild_from_record_1(store)
    result = cli("verify", **PRODUCTION)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        f"BROKEN at checkpoint: checkpoint_other_chain: checkpoint file {folder / '2.json'} ")
    assert f"{written} names chain {signed.chain_id} (seq 3)" in result.output
    body = json.loads(cli("verify", "--json", **PRODUCTION).output)
    assert (body["ok"], body["reason"], body["first_bad_seq"], body["checkpoints_ignored"]) == (
        False, "checkpoint_other_chain", None, 0), body
    # Outside production the same folder may be another database's: ignored, but said loudly
    # once the chain holds more records than one checkpoint's interval and no checkpoint.
    quiet = cli("verify", FLASHLOAN_SIGNING_KEY=PRODUCTION["FLASHLOAN_SIGNING_KEY"])
    assert quiet.exit_code == 0, quiet.output
    assert "WARNING" not in quiet.output
    loud = cli("verify", FLASHLOAN_SIGNING_KEY=PRODUCTION["FLASHLOAN_SIGNING_KEY"],
               FLASHLOAN_CHECKPOINT_EVERY_RECORDS="2")
    assert loud.exit_code == 0, loud.output
    assert loud.output.splitlines()[1].startswith(
        "WARNING: this chain holds no checkpoint, yet 2 checkpoint file(s) signed by the "
        "service's key name another chain")
    assert json.loads(cli("verify", "--json", FLASHLOAN_SIGNING_KEY=PRODUCTION[
        "FLASHLOAN_SIGNING_KEY"], FLASHLOAN_CHECKPOINT_EVERY_RECORDS="2").output)["warning"]
