"""API keys: created, listed and revoked, each change an audit record; only hashes are stored.

A key reads ``fl_<key_id>_<secret>``: the id names it (in listings, the audit log and the
command line), the secret proves it and is shown once, when the key is made.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, NamedTuple

from sqlalchemy import Engine, insert, select, update

from audit import AuditStore
from service.domain.encoding import now_text
from service.domain.permissions import ROLES
from service.persistence.tables import api_keys

KEY_PREFIX = "fl"
KEY_ID_LENGTH = 12
MAX_NAME_LENGTH = 100
# Who acted, in the audit log, when the change came from the command line on a host.
CLI_ACTOR = "system:cli"


class KeyNotFound(LookupError):
    """No key has this id."""


class NewKey(NamedTuple):
    """A key just made: what listings show of it, and the key itself (shown this once)."""

    view: dict[str, Any]
    key: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_view(row: Any) -> dict[str, Any]:
    """What may be shown of a stored key: never its secret or the secret's hash."""
    return {"key_id": row.key_id, "name": row.name, "role": row.role,
            "status": "active" if row.revoked_at is None else "revoked",
            "created_at": row.created_at, "revoked_at": row.revoked_at}


def check_key_request(role: str, name: str) -> str:
    """Return ``name`` stripped, or raise ValueError naming what is wrong."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValueError(f"name must be 1 to {MAX_NAME_LENGTH} characters besides spaces; "
                         f"got {len(name)}")
    return name


def issue_key(engine: Engine, role: str, name: str, *, actor: str) -> NewKey:
    """Make a key for ``role``, recording ``key.created`` by ``actor`` in the same transaction."""
    name = check_key_request(role, name)
    key_id = secrets.token_hex(KEY_ID_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    created_at = now_text()
    with AuditStore(engine).writer() as writer:
        writer.connection.execute(insert(api_keys).values(
            key_id=key_id, name=name, role=role, secret_hash=hash_secret(secret),
            created_at=created_at))
        writer.append("key.created", {"key_id": key_id, "name": name, "role": role},
                      actor=actor)
    view = {"key_id": key_id, "name": name, "role": role, "status": "active",
            "created_at": created_at, "revoked_at": None}
    return NewKey(view, f"{KEY_PREFIX}_{key_id}_{secret}")


def create_key(engine: Engine, role: str, name: str, *, actor: str = CLI_ACTOR) -> str:
    """Create an API key and return it; only its hash is stored."""
    return issue_key(engine, role, name, actor=actor).key


def list_keys(engine: Engine) -> list[dict[str, Any]]:
    """Every key, oldest first, without secrets."""
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at,
                                                      api_keys.c.key_id)).all()
    return [key_view(row) for row in rows]


def revoke_key(engine: Engine, key_id: str, *, actor: str) -> tuple[dict[str, Any], bool]:
    """Revoke a key, recording ``key.revoked`` by ``actor``; return its view and whether it
    was revoked now (False: it already was, and nothing changed). Raise KeyNotFound."""
    with AuditStore(engine).writer() as writer:
        conn = writer.connection
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise KeyNotFound(key_id)
        if row.revoked_at is not None:
            return key_view(row), False
        revoked_at = now_text()
        conn.execute(update(api_keys).where(api_keys.c.key_id == key_id)
                     .values(revoked_at=revoked_at))
        writer.append("key.revoked", {"key_id": key_id, "name": row.name, "role": row.role,
                                      "revoked_at": revoked_at}, actor=actor)
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).one()
    return key_view(row), True


def count_keys(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(api_keys.c.key_id).limit(1)).all())
