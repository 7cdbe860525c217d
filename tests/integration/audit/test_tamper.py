"""Every kind of tampering is caught, named by reason and by the first bad sequence number."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.canonical import sha256_hex
from audit.checkpoints import Checkpoint, checkpoint_message, public_key_hex, sign_checkpoint
from audit.store import AuditStore
from tests.integration.audit import tampering

N = 10


@pytest.fixture
def chain(store: AuditStore) -> AuditStore:
    """A chain of N records whose guards are dropped, ready to be tampered with."""
    for i in range(1, N + 1):
        store.append(
            "decision.made" if i % 2 else "source.fetched",
            {"n": i, "outcome": "approved"},
            application_id=f"app-{i}",
            actor="channel:key_ab12",
        )
    assert store.verify().ok
    tampering.drop_guards(store.engine)
    return store


def assert_broken(store: AuditStore, seq: int, reason: str, **kw) -> None:
    result = store.verify(**kw)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, seq, reason), result
    assert str(seq) in result.message


def test_intact_chain_verifies(chain: AuditStore) -> None:
    result = chain.verify()
    assert (result.ok, result.checked, result.first_bad_seq, result.reason) == (True, N, None, None)


def test_edited_payload_is_caught(chain: AuditStore) -> None:
    tampering.execute(
        chain.engine,
        "UPDATE audit_records SET payload = :p WHERE seq = 4",
        p='{"n":4,"outcome":"declined"}',
    )
    assert_broken(chain, 4, "payload_altered")


def test_edited_payload_with_its_hash_recomputed_is_caught(chain: AuditStore) -> None:
    forged = '{"n":4,"outcome":"declined"}'
    tampering.execute(
        chain.engine,
        "UPDATE audit_records SET payload = :p, payload_hash = :h WHERE seq = 4",
        p=forged,
        h=sha256_hex(forged.encode()),
    )
    assert_broken(chain, 4, "record_altered")


def test_edited_record_hash_is_caught(chain: AuditStore) -> None:
    tampering.execute(
        chain.engine, "UPDATE audit_records SET record_hash = :h WHERE seq = 6", h="f" * 64
    )
    assert_broken(chain, 6, "record_altered")


def test_edited_prev_hash_is_caught(chain: AuditStore) -> None:
    tampering.execute(
        chain.engine, "UPDATE audit_records SET prev_hash = :h WHERE seq = 6", h="e" * 64
    )
    assert_broken(chain, 6, "record_altered")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("recorded_at", "2020-01-01T00:00:00.000000Z"),
        ("kind", "decision.overturned"),
        ("application_id", "app-other"),
        ("actor", "admin:key_zz99"),
    ],
)
def test_edited_chained_field_is_caught(chain: AuditStore, column: str, value: str) -> None:
    tampering.execute(
        chain.engine, f"UPDATE audit_records SET {column} = :v WHERE seq = 7", v=value
    )
    assert_broken(chain, 7, "record_altered")


def test_deleted_record_is_caught(chain: AuditStore) -> None:
    tampering.execute(chain.engine, "DELETE FROM audit_records WHERE seq = 5")
    assert_broken(chain, 5, "gap")


def test_deleted_first_record_is_caught(chain: AuditStore) -> None:
    tampering.execute(chain.engine, "DELETE FROM audit_records WHERE seq = 1")
    assert_broken(chain, 1, "gap")


def test_swapped_records_are_caught(chain: AuditStore) -> None:
    tampering.swap(chain.engine, 4, 5)
    assert_broken(chain, 4, "reordered")


def test_distant_swap_is_caught(chain: AuditStore) -> None:
    tampering.swap(chain.engine, 3, 8)
    assert_broken(chain, 3, "reordered")


def test_fork_is_caught(chain: AuditStore) -> None:
    tampering.drop_fork_guard(chain.engine)
    tampering.relink(chain.engine, 6, chain.get(4).record_hash)
    assert_broken(chain, 6, "fork")


def test_second_genesis_is_caught(chain: AuditStore) -> None:
    tampering.drop_fork_guard(chain.engine)
    tampering.relink(chain.engine, 6, "0" * 64)
    assert_broken(chain, 6, "fork")


def test_a_shorter_chain_is_caught_with_a_checkpoint(chain: AuditStore) -> None:
    signed = sign_checkpoint(chain, Ed25519PrivateKey.generate())
    tampering.execute(chain.engine, "DELETE FROM audit_records WHERE seq >= 8")
    assert chain.verify().ok, "without a checkpoint a shorter chain is a valid chain"
    # Nothing tells a cut at the end from a deletion before it with the rest renumbered,
    # and no checkpoint that still holds vouches for any record.
    result = chain.verify(checkpoints=[signed])
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 1, "records_missing")
    assert (result.checkpoint_held, result.checkpoint_failed) == (None, N)
    assert "ends at record 7" in result.message and "record 10" in result.message


def test_a_chain_cut_at_a_checkpoint_that_holds_is_truncated(chain: AuditStore) -> None:
    key = Ed25519PrivateKey.generate()
    early = _checkpoint_at(chain, key, 7)
    late = sign_checkpoint(chain, key)
    tampering.execute(chain.engine, "DELETE FROM audit_records WHERE seq >= 8")
    result = chain.verify(checkpoints=[early, late])
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 8, "truncated")
    assert (result.checkpoint_held, result.checkpoint_failed) == (7, N)
    assert "records 8..10 were removed from the end" in result.message


def test_a_deleted_and_renumbered_record_is_not_called_a_truncation(chain: AuditStore) -> None:
    key = Ed25519PrivateKey.generate()
    early = _checkpoint_at(chain, key, 3)
    late = sign_checkpoint(chain, key)
    tampering.delete_and_renumber(chain.engine, 5)
    assert chain.verify().ok, "the renumbered chain is internally consistent"
    result = chain.verify(checkpoints=[early, late])
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 4, "records_missing")
    assert (result.checkpoint_held, result.checkpoint_failed) == (3, N)
    assert "truncat" not in result.message
    assert "checkpoint of record 3" in result.message and "record 10" in result.message


def test_rewritten_history_is_caught_with_a_checkpoint(chain: AuditStore) -> None:
    key = Ed25519PrivateKey.generate()
    early = _checkpoint_at(chain, key, 3)
    late = sign_checkpoint(chain, key)
    tampering.rewrite_from(chain.engine, 5, '{"n":5,"outcome":"declined"}')
    assert chain.verify().ok, "a rewrite with fresh hashes is internally consistent"
    assert chain.verify(checkpoints=[early]).ok, "the history up to 3 is untouched"
    # Reported where the doubt begins, after the last checkpoint that holds, not at the
    # checkpoint that found it.
    result = chain.verify(checkpoints=[early, late])
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 4, "checkpoint_mismatch")
    assert (result.checkpoint_held, result.checkpoint_failed) == (3, N)
    assert "records 4..10" in result.message and "rewritten" in result.message


def test_checkpoint_with_a_bad_signature_is_refused(chain: AuditStore) -> None:
    signed = sign_checkpoint(chain, Ed25519PrivateKey.generate())
    forged = Checkpoint(signed.seq, "0" * 64, signed.time, signed.public_key, signed.signature)
    result = chain.verify(checkpoints=[forged])
    assert (result.ok, result.reason) == (False, "checkpoint_invalid")


def test_checkpoint_from_another_key_is_refused(chain: AuditStore) -> None:
    trusted = Ed25519PrivateKey.generate().public_key()
    signed = sign_checkpoint(chain, Ed25519PrivateKey.generate())
    assert chain.verify(checkpoints=[signed]).ok
    result = chain.verify(checkpoints=[signed], public_key=trusted)
    assert (result.ok, result.reason) == (False, "checkpoint_invalid")


def test_partial_range_is_verified_from_its_predecessor(chain: AuditStore) -> None:
    tampering.execute(
        chain.engine, "UPDATE audit_records SET record_hash = :h WHERE seq = 3", h="a" * 64
    )
    assert chain.verify(end_seq=2).ok
    assert_broken(chain, 3, "record_altered", start_seq=3, end_seq=5)
    assert_broken(chain, 4, "record_altered", start_seq=4, end_seq=6)


def _checkpoint_at(store: AuditStore, key: Ed25519PrivateKey, seq: int) -> Checkpoint:
    """Sign record ``seq`` as a checkpoint taken when it was the head would have."""
    record = store.get(seq)
    time = "2030-01-01T00:00:00.000000Z"
    signature = key.sign(checkpoint_message(seq, record.record_hash, time)).hex()
    return Checkpoint(seq, record.record_hash, time, public_key_hex(key), signature)
