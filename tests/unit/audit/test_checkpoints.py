"""Signing keys and signed checkpoints, without a database."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.checkpoints import (
    Checkpoint,
    load_checkpoints,
    load_signing_key,
    public_key_hex,
    sign_checkpoint,
    verify_checkpoint_signature,
    write_checkpoint,
)
from audit.errors import CheckpointError
from audit.records import GENESIS_HASH, AuditRecord

SEED = bytes(range(32))
CHAIN = "f" * 64


class FakeChain:
    """A chain that is only its name and its head."""

    def __init__(self, seq: int | None, record_hash: str = "c" * 64) -> None:
        self._head = (
            None
            if seq is None
            else AuditRecord(
                seq,
                datetime(2024, 1, 1, tzinfo=UTC),
                "decision.made",
                None,
                None,
                {},
                "a" * 64,
                GENESIS_HASH,
                record_hash,
            )
        )

    def head(self) -> AuditRecord | None:
        return self._head

    def chain_id(self) -> str | None:
        return None if self._head is None else CHAIN


def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def test_checkpoint_signs_chain_seq_hash_and_time() -> None:
    signed = sign_checkpoint(FakeChain(42), key(), now=datetime(2024, 6, 1, tzinfo=UTC))
    assert (signed.chain_id, signed.seq, signed.record_hash, signed.time) == (
        CHAIN,
        42,
        "c" * 64,
        "2024-06-01T00:00:00.000000Z",
    )
    assert signed.signed_bytes() == (
        b'{"chain_id":"' + CHAIN.encode() + b'","record_hash":"' + b"c" * 64
        + b'","seq":42,"time":"2024-06-01T00:00:00.000000Z"}'
    )
    key().public_key().verify(bytes.fromhex(signed.signature), signed.signed_bytes())
    assert verify_checkpoint_signature(signed)
    assert verify_checkpoint_signature(signed, public_key_hex(key()))
    assert verify_checkpoint_signature(signed, key().public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 43},
        {"record_hash": "d" * 64},
        {"time": "2024-06-02T00:00:00.000000Z"},
        {"signature": "00" * 64},
        {"signature": "not hex"},
        {"public_key": public_key_hex(Ed25519PrivateKey.generate())},
        {"chain_id": "e" * 64},
    ],
)
def test_any_change_breaks_the_signature(change: dict) -> None:
    signed = sign_checkpoint(FakeChain(42), key()).to_dict()
    assert not verify_checkpoint_signature(Checkpoint.from_dict(signed | change))


def test_a_checkpoint_signed_before_checkpoints_named_their_chain_still_verifies(
    tmp_path: Path,
) -> None:
    message = b'{"record_hash":"' + b"c" * 64 + b'","seq":3,"time":"2024-06-01T00:00:00.000000Z"}'
    old = {"format": "flashloan.audit.checkpoint/1", "seq": 3, "record_hash": "c" * 64,
           "time": "2024-06-01T00:00:00.000000Z", "public_key": public_key_hex(key()),
           "signature": key().sign(message).hex()}
    (tmp_path / "3.json").write_text(json.dumps(old))
    (loaded,) = load_checkpoints([tmp_path])
    assert loaded.chain_id is None and verify_checkpoint_signature(loaded, key().public_key())
    assert loaded.to_dict() == old
    # Naming a chain afterwards breaks the signature; so does dropping the name of one.
    assert not verify_checkpoint_signature(Checkpoint.from_dict(
        old | {"format": "flashloan.audit.checkpoint/2", "chain_id": CHAIN}))
    named = sign_checkpoint(FakeChain(3), key()).to_dict()
    del named["chain_id"]
    assert not verify_checkpoint_signature(Checkpoint.from_dict(
        named | {"format": "flashloan.audit.checkpoint/1"}))


def test_only_the_trusted_key_is_accepted_when_given() -> None:
    signed = sign_checkpoint(FakeChain(42), Ed25519PrivateKey.generate())
    assert verify_checkpoint_signature(signed)
    assert not verify_checkpoint_signature(signed, public_key_hex(key()))
    assert not verify_checkpoint_signature(signed, "short")


def test_empty_chain_cannot_be_checkpointed() -> None:
    with pytest.raises(CheckpointError, match="at least one record"):
        sign_checkpoint(FakeChain(None), key())


def test_written_checkpoint_reads_back_and_is_never_replaced(tmp_path: Path) -> None:
    first = sign_checkpoint(FakeChain(7), key(), now=datetime(2024, 1, 1, tzinfo=UTC))
    path = write_checkpoint(first, tmp_path / "checkpoints")
    assert path == tmp_path / "checkpoints" / f"7-{CHAIN[:16]}.json"
    assert json.loads(path.read_text())["format"] == "flashloan.audit.checkpoint/2"
    assert load_checkpoints([path]) == [first]

    later = sign_checkpoint(FakeChain(7), key(), now=datetime(2025, 1, 1, tzinfo=UTC))
    assert write_checkpoint(later, tmp_path / "checkpoints") == path
    assert load_checkpoints([path]) == [first], "the earlier checkpoint is kept"

    forged = sign_checkpoint(FakeChain(7, "e" * 64), key())
    with pytest.raises(CheckpointError, match="must not be replaced"):
        write_checkpoint(forged, tmp_path / "checkpoints")
    assert load_checkpoints([path]) == [first]


def test_a_folder_of_checkpoints_loads_in_seq_order(tmp_path: Path) -> None:
    for seq in (10, 9, 100):
        write_checkpoint(sign_checkpoint(FakeChain(seq), key()), tmp_path)
    assert [cp.seq for cp in load_checkpoints([tmp_path])] == [9, 10, 100]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{nope", "must be readable JSON"),
        ("[]", "checkpoint must be a JSON object; got list"),
        ('{"seq": 0}', "checkpoint seq must be a positive integer; got 0"),
        ('{"seq": 1, "record_hash": "x"}', "checkpoint time must be a string"),
        (
            '{"seq": 1, "record_hash": "x", "time": "t", "public_key": "k", "signature": "s"}',
            "record_hash must be 64 hex digits",
        ),
        (
            '{"format": "flashloan.audit.checkpoint/2", "seq": 1, "record_hash": "' + "c" * 64
            + '", "time": "t", "public_key": "k", "signature": "s"}',
            "chain_id must be 64 hex digits; got None",
        ),
        (
            '{"format": "flashloan.audit.checkpoint/9", "seq": 1, "record_hash": "' + "c" * 64
            + '", "time": "t", "public_key": "k", "signature": "s"}',
            "format must be flashloan.audit.checkpoint/2 or",
        ),
    ],
)
def test_malformed_checkpoint_files_are_refused(tmp_path: Path, content: str, message) -> None:
    path = tmp_path / "1.json"
    path.write_text(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoints([path])


@pytest.mark.parametrize(
    "setting",
    [
        SEED.hex(),
        SEED.hex().upper(),
        base64.b64encode(SEED).decode(),
        base64.urlsafe_b64encode(SEED).decode().rstrip("="),
    ],
)
def test_signing_key_from_a_seed(setting: str, tmp_path: Path) -> None:
    loaded = load_signing_key(setting, tmp_path, production=True)
    assert public_key_hex(loaded) == public_key_hex(key())


def test_signing_key_from_a_pem_file(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(
        key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert public_key_hex(load_signing_key(str(path), tmp_path, True)) == public_key_hex(key())


def test_pem_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(CheckpointError, match="must hold an Ed25519 key"):
        load_signing_key(str(path), tmp_path, False)


def test_missing_pem_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="must be an unencrypted PEM private key"):
        load_signing_key(str(tmp_path / "absent.pem"), tmp_path, False)


def test_malformed_setting_is_refused_without_being_echoed(tmp_path: Path) -> None:
    secret = "my-secret-signing-key"
    with pytest.raises(CheckpointError, match="32-byte Ed25519 seed") as caught:
        load_signing_key(secret, tmp_path, False)
    assert secret not in str(caught.value)


def test_development_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = load_signing_key(None, tmp_path / "var", production=False)
    path = tmp_path / "var" / "signing-key.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_signing_key(None, tmp_path / "var", production=False)
    assert public_key_hex(again) == public_key_hex(first)
    assert [p.name for p in path.parent.iterdir()] == ["signing-key.pem"]


def test_no_key_is_generated_in_production(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="must be set in production"):
        load_signing_key(None, tmp_path, production=True)
    assert not (tmp_path / "signing-key.pem").exists()
