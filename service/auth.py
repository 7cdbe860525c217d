"""Bearer API keys: stored hashed, one role each; a decorator that authenticates and authorises."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import g, request
from sqlalchemy import Engine, insert, select

from service.db import api_keys, now_text, write_transaction
from service.errors import ApiError
from service.limits import per_key

ROLES = ("channel", "risk_officer", "auditor", "admin")
KEY_PREFIX = "fl"
_CACHE_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, name and role."""

    key_id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        """The audit log's ``actor``: role and key id, never the secret."""
        return f"{self.role}:{self.key_id}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(engine: Engine, role: str, name: str) -> str:
    """Create an API key and return it; only its hash is stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError(f"name must be 1 to 100 characters; got {len(name)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with write_transaction(engine) as conn:
        conn.execute(insert(api_keys).values(key_id=key_id, name=name, role=role,
                                             secret_hash=_hash(secret), created_at=now_text()))
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def count_keys(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(api_keys.c.key_id).limit(1)).all())


class KeyRing:
    """Checks presented keys against the database, caching lookups briefly per worker."""

    def __init__(self, engine: Engine, ttl_s: float = _CACHE_TTL_S) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _row(self, key_id: str):
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (now, row)
        return row

    def authenticate(self, header: str | None) -> Principal:
        """Return the principal of an ``Authorization: Bearer`` header, or raise 401."""
        challenge = {"WWW-Authenticate": 'Bearer realm="flashloan"'}
        if not header or not header.startswith("Bearer "):
            raise ApiError(401, "an API key is required (Authorization: Bearer <key>)",
                           headers=challenge)
        token = header[len("Bearer "):].strip()
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
            raise ApiError(401, "the API key is not valid", headers=challenge)
        row = self._row(parts[1])
        if row is None or row.revoked_at is not None or not hmac.compare_digest(
                row.secret_hash, _hash(parts[2])):
            raise ApiError(401, "the API key is not valid", headers=challenge)
        return Principal(row.key_id, row.name, row.role)


def current() -> Principal:
    """The principal of the current request (set by ``requires``)."""
    return g.principal


def requires(*roles: str) -> Callable:
    """Authenticate the request and allow only the given roles."""
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")

    def decorate(view: Callable) -> Callable:
        limited = per_key(view)

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from service.wiring import wiring

            principal = wiring().keys.authenticate(request.headers.get("Authorization"))
            g.principal = principal
            if principal.role not in roles:
                raise ApiError(403, f"the {principal.role} role may not do this")
            return limited(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate
