"""Signed checkpoints: an Ed25519 signature over the chain head, kept apart from the database.

A checkpoint signs the canonical JSON of ``{"chain_id", "record_hash", "seq", "time"}``, the
chain named by the hash of its first record (:mod:`audit.chains`). Whoever keeps a copy can
later prove that the chain still extends it: a chain cut short no longer reaches ``seq``
(truncation), and a chain rebuilt with fresh hashes has another ``record_hash`` at ``seq``
(rewritten history); neither can be hidden without the private key. Checkpoints signed before
they named their chain (format ``/1``) sign ``{"record_hash", "seq", "time"}`` and still
verify.
"""

from __future__ import annotations

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
from audit.signing_keys import decode_32, load_signing_key

__all__ = [
    "FORMAT",
    "LEGACY_FORMAT",
    "Checkpoint",
    "load_checkpoint_files",
    "load_checkpoints",
    "load_signing_key",
    "public_key_hex",
    "sign_checkpoint",
    "verify_checkpoint_signature",
    "write_checkpoint",
]

FORMAT = "flashloan.audit.checkpoint/2"
LEGACY_FORMAT = "flashloan.audit.checkpoint/1"
"""Checkpoints signed before they named their chain: no ``chain_id``."""
_HEX64 = re.compile(r"[0-9a-f]{64}")


class _Chain(Protocol):
    def head(self) -> AuditRecord | None: ...

    def chain_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that record ``seq`` of the chain ``chain_id`` had ``record_hash``
    at ``time``; ``chain_id`` is None for a checkpoint signed before checkpoints named it."""

    seq: int
    record_hash: str
    time: str
    public_key: str
    signature: str
    chain_id: str | None = None

    def signed_bytes(self) -> bytes:
        """Return exactly the bytes the signature covers."""
        return checkpoint_message(self.seq, self.record_hash, self.time, self.chain_id)

    def to_dict(self) -> dict[str, Any]:
        """Return the checkpoint as written to its file."""
        named = {} if self.chain_id is None else {"chain_id": self.chain_id}
        return {
            "format": LEGACY_FORMAT if self.chain_id is None else FORMAT,
            **named,
            "seq": self.seq,
            "record_hash": self.record_hash,
            "time": self.time,
            "public_key": self.public_key,
            "signature": self.signature,
        }

    @property
    def file_name(self) -> str:
        """Return its file's name: the seq and the chain, so that chains never collide."""
        return f"{self.seq}.json" if self.chain_id is None else (
            f"{self.seq}-{self.chain_id[:16]}.json")

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
        return cls(seq=seq, **fields, chain_id=_chain_id(data))


def _chain_id(data: dict[str, Any]) -> str | None:
    """Return the chain a checkpoint's JSON names: required in its format, absent before."""
    form, chain_id = data.get("format", LEGACY_FORMAT), data.get("chain_id")
    if form == LEGACY_FORMAT:
        if chain_id is not None:
            raise CheckpointError(
                f"checkpoint of format {LEGACY_FORMAT} must name no chain_id; got {chain_id!r}")
        return None
    if form != FORMAT:
        raise CheckpointError(
            f"checkpoint format must be {FORMAT} or {LEGACY_FORMAT}; got {form!r}")
    if not isinstance(chain_id, str) or not _HEX64.fullmatch(chain_id):
        raise CheckpointError(f"checkpoint chain_id must be 64 hex digits; got {chain_id!r}")
    return chain_id


def checkpoint_message(seq: int, record_hash: str, time: str,
                       chain_id: str | None = None) -> bytes:
    """Return the canonical JSON that a checkpoint's signature covers (no chain_id: the
    format before checkpoints named their chain)."""
    signed: dict[str, Any] = {"record_hash": record_hash, "seq": seq, "time": time}
    if chain_id is not None:
        signed["chain_id"] = chain_id
    return canonical_json(signed)


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Return the raw 32-byte public key as hex."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def sign_checkpoint(
    store: _Chain, key: Ed25519PrivateKey, *, now: datetime | None = None
) -> Checkpoint:
    """Sign the current head of ``store``'s chain, naming the chain."""
    head = store.head()
    if head is None:
        raise CheckpointError("chain must hold at least one record to checkpoint; got none")
    chain_id = store.chain_id()
    time = format_time(now or datetime.now(UTC), what="now")
    signature = key.sign(checkpoint_message(head.seq, head.record_hash, time, chain_id))
    return Checkpoint(head.seq, head.record_hash, time, public_key_hex(key), signature.hex(),
                      chain_id)


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
    raw = value if isinstance(value, bytes) else decode_32(value)
    if raw is None or len(raw) != 32:
        raise ValueError("public key must be 32 bytes as hex or base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_checkpoint(checkpoint: Checkpoint, directory: Path | str) -> Path:
    """Write ``<seq>-<chain>.json`` into ``directory``; never replace a checkpoint of another
    hash or chain."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint.file_name
    if path.exists():
        (kept,) = load_checkpoints([path])
        if (kept.record_hash, kept.chain_id) != (checkpoint.record_hash, checkpoint.chain_id):
            raise CheckpointError(
                f"checkpoint {path} must not be replaced by one of another record_hash or "
                f"chain; kept {kept.record_hash}, got {checkpoint.record_hash}"
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
    return [checkpoint for _, checkpoint in load_checkpoint_files(paths)]


def load_checkpoint_files(paths: Iterable[Path | str]) -> list[tuple[Path, Checkpoint]]:
    """Read checkpoint files (a folder stands for its ``*.json``) with their paths, by seq."""
    found: list[tuple[Path, Checkpoint]] = []
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
                found.append((file, Checkpoint.from_dict(data)))
            except CheckpointError as exc:
                raise CheckpointError(f"{file}: {exc}") from None
    return sorted(found, key=lambda pair: pair[1].seq)
