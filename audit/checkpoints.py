"""Signed checkpoints: an Ed25519 signature over the chain head, kept apart from the database.

A checkpoint signs the canonical JSON of ``{"record_hash", "seq", "time"}``. Whoever keeps a
copy can later prove that the chain still extends it: a chain cut short no longer reaches
``seq`` (truncation), and a chain rebuilt with fresh hashes has another ``record_hash`` at
``seq`` (rewritten history); neither can be hidden without the private key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from audit.canonical import canonical_json, format_time
from audit.errors import CheckpointError
from audit.records import MAX_SEQ, AuditRecord

__all__ = [
    "FORMAT",
    "Checkpoint",
    "load_checkpoints",
    "load_signing_key",
    "public_key_hex",
    "sign_checkpoint",
    "verify_checkpoint_signature",
    "write_checkpoint",
]

FORMAT = "flashloan.audit.checkpoint/1"
DEV_KEY_FILE = "signing-key.pem"
_HEX32 = re.compile(r"[0-9a-fA-F]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class _Chain(Protocol):
    def head(self) -> AuditRecord | None: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that record ``seq`` of the chain had ``record_hash`` at ``time``."""

    seq: int
    record_hash: str
    time: str
    public_key: str
    signature: str

    def signed_bytes(self) -> bytes:
        """Return exactly the bytes the signature covers."""
        return checkpoint_message(self.seq, self.record_hash, self.time)

    def to_dict(self) -> dict[str, Any]:
        """Return the checkpoint as written to its file."""
        return {
            "format": FORMAT,
            "seq": self.seq,
            "record_hash": self.record_hash,
            "time": self.time,
            "public_key": self.public_key,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """Read a checkpoint from its file's JSON, checking every field's shape."""
        if not isinstance(data, dict):
            raise CheckpointError(f"checkpoint must be a JSON object; got {type(data).__name__}")
        seq = data.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            raise CheckpointError(f"checkpoint seq must be a positive integer; got {seq!r}")
        fields = {}
        for name in ("record_hash", "time", "public_key", "signature"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise CheckpointError(f"checkpoint {name} must be a string; got {value!r}")
            fields[name] = value
        if not _HEX64.fullmatch(fields["record_hash"]):
            raise CheckpointError(
                f"checkpoint record_hash must be 64 hex digits; got {fields['record_hash']!r}"
            )
        return cls(seq=seq, **fields)


def checkpoint_message(seq: int, record_hash: str, time: str) -> bytes:
    """Return the canonical JSON that a checkpoint's signature covers."""
    return canonical_json({"record_hash": record_hash, "seq": seq, "time": time})


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Return the raw 32-byte public key as hex."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def sign_checkpoint(
    store: _Chain, key: Ed25519PrivateKey, *, now: datetime | None = None
) -> Checkpoint:
    """Sign the current head of ``store``'s chain."""
    head = store.head()
    if head is None:
        raise CheckpointError("chain must hold at least one record to checkpoint; got none")
    time = format_time(now or datetime.now(UTC), what="now")
    signature = key.sign(checkpoint_message(head.seq, head.record_hash, time))
    return Checkpoint(head.seq, head.record_hash, time, public_key_hex(key), signature.hex())


def verify_checkpoint_signature(
    checkpoint: Checkpoint, public_key: Ed25519PublicKey | str | bytes | None = None
) -> bool:
    """Return whether the signature holds, under ``public_key`` if given, else the named key.

    An auditor should pass the public key they trust: a forger can name any key they like.
    """
    try:
        named = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key))
        trusted = named if public_key is None else _public_key(public_key)
        trusted.verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def _public_key(value: Ed25519PublicKey | str | bytes) -> Ed25519PublicKey:
    if isinstance(value, Ed25519PublicKey):
        return value
    raw = value if isinstance(value, bytes) else _decode_32(value)
    if raw is None or len(raw) != 32:
        raise ValueError("public key must be 32 bytes as hex or base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_checkpoint(checkpoint: Checkpoint, directory: Path | str) -> Path:
    """Write ``<seq>.json`` into ``directory``; never replace a checkpoint of another hash."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{checkpoint.seq}.json"
    if path.exists():
        (kept,) = load_checkpoints([path])
        if kept.record_hash != checkpoint.record_hash:
            raise CheckpointError(
                f"checkpoint {path} must not be replaced by one of another record_hash; "
                f"kept {kept.record_hash}, got {checkpoint.record_hash}"
            )
        return path  # the earlier checkpoint of the same head is the stronger evidence
    text = json.dumps(checkpoint.to_dict(), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".checkpoint-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def load_checkpoints(paths: Iterable[Path | str]) -> list[Checkpoint]:
    """Read checkpoint files (a folder stands for its ``*.json``), ordered by seq."""
    found: list[Checkpoint] = []
    for entry in paths:
        path = Path(entry)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CheckpointError(
                    f"checkpoint file {file} must be readable JSON; got {exc}"
                ) from None
            try:
                found.append(Checkpoint.from_dict(data))
            except CheckpointError as exc:
                raise CheckpointError(f"{file}: {exc}") from None
    return sorted(found, key=lambda cp: cp.seq)


def load_signing_key(
    setting: str | None, var_dir: Path | str, production: bool
) -> Ed25519PrivateKey:
    """Return the signing key named by ``FLASHLOAN_SIGNING_KEY``.

    ``setting`` is the 32-byte Ed25519 seed as hex or base64, or the path of an unencrypted
    PKCS#8 PEM file. Unset outside production, a development key is made once in
    ``var_dir/signing-key.pem`` (mode 0600) and reused; unset in production is an error.
    """
    if setting:
        return _key_from_setting(setting)
    if production:
        raise CheckpointError(
            "FLASHLOAN_SIGNING_KEY must be set in production; got nothing "
            "(a development key is never generated there)"
        )
    return _development_key(Path(var_dir) / DEV_KEY_FILE)


def _key_from_setting(setting: str) -> Ed25519PrivateKey:
    path = Path(setting).expanduser()
    if setting.strip().endswith(".pem") or path.is_file():
        return _read_pem(path)
    seed = _decode_32(setting.strip())
    if seed is None:
        # The setting is a secret: describe it, never print it.
        raise CheckpointError(
            "FLASHLOAN_SIGNING_KEY must be a 32-byte Ed25519 seed as hex or base64, or the "
            f"path of a PEM file; got a value of {len(setting)} characters that is neither"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def _decode_32(value: str) -> bytes | None:
    if _HEX32.fullmatch(value):
        return bytes.fromhex(value)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    return None


def _read_pem(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"signing key file {path} must be an unencrypted PEM private key; got {exc}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(
            f"signing key file {path} must hold an Ed25519 key; got {type(key).__name__}"
        )
    return key


def _development_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return _read_pem(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        # link() fails if another process made the key first; theirs is then the key.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read_pem(path)
