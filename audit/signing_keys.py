"""Signing keys of checkpoints: the one configured, or in development one made for the
database.

``FLASHLOAN_SIGNING_KEY`` names the key: a 32-byte Ed25519 seed as hex or base64, or the path
of an unencrypted PKCS#8 PEM file; production requires it. Unset outside production, each
instance would otherwise make a key of its own in its var/ folder, and a checkpoint taken by
one instance would not verify on the next; so the first instance of a database to need one
records it in ``audit_development_key`` — the key its var/ folder already keeps, so that
checkpoints signed before go on verifying, else a new one — and every instance of that
database signs with it. Production never reads or writes that table.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from audit.canonical import format_time
from audit.errors import CheckpointError
from audit.schema import audit_development_key

if TYPE_CHECKING:
    from audit.chain_access import ChainAccess

__all__ = ["DEV_KEY_FILE", "database_signing_key", "decode_32", "load_signing_key"]

DEV_KEY_FILE = "signing-key.pem"
_HEX32 = re.compile(r"[0-9a-fA-F]{64}")
_K = audit_development_key.c


def database_signing_key(store: ChainAccess, setting: str | None, var_dir: Path | str,
                         production: bool, *, record: bool = True) -> Ed25519PrivateKey:
    """Return the key that checkpoints of ``store``'s chain are signed with.

    The configured one when set (required in production); else the development key recorded
    for the database, recording the var/ folder's (made if need be) when none is yet — unless
    ``record`` is false (a verification, which may only read the database).
    """
    if setting or production:
        return load_signing_key(setting, var_dir, production)
    recorded = _recorded_key(store)
    if recorded is not None:
        return recorded
    candidate = load_signing_key(None, var_dir, production=False)
    if not record:
        return candidate
    seed = candidate.private_bytes(serialization.Encoding.Raw,
                                   serialization.PrivateFormat.Raw,
                                   serialization.NoEncryption()).hex()
    # Under the chain lock, so that of instances starting at once one records its key and
    # the others sign with it.
    with store.writer() as writer:
        conn = writer.connection
        kept = conn.execute(select(_K.seed).where(_K.id == 1)).scalar_one_or_none()
        if kept is None:
            conn.execute(audit_development_key.insert().values(
                id=1, seed=seed, public_key=candidate.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex(),
                recorded_at=format_time(store.now(), what="now")))
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(kept or seed))


def _recorded_key(store: ChainAccess) -> Ed25519PrivateKey | None:
    with store.engine.connect() as conn:
        seed = conn.execute(select(_K.seed).where(_K.id == 1)).scalar_one_or_none()
    return None if seed is None else Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))


def load_signing_key(
    setting: str | None, var_dir: Path | str, production: bool
) -> Ed25519PrivateKey:
    """Return the signing key named by ``FLASHLOAN_SIGNING_KEY``.

    ``setting`` is the 32-byte Ed25519 seed as hex or base64, or the path of an unencrypted
    PKCS#8 PEM file. Unset outside production, a development key is made once in
    ``var_dir/signing-key.pem`` (mode 0600) and reused; unset in production is an error. The
    service asks :func:`database_signing_key`, which makes one development key serve every
    instance of a database.
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
    seed = decode_32(setting.strip())
    if seed is None:
        # The setting is a secret: describe it, never print it.
        raise CheckpointError(
            "FLASHLOAN_SIGNING_KEY must be a 32-byte Ed25519 seed as hex or base64, or the "
            f"path of a PEM file; got a value of {len(setting)} characters that is neither"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def decode_32(value: str) -> bytes | None:
    """Return the 32 bytes that ``value`` spells in hex or base64, or None."""
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
