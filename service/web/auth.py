"""Bearer API keys: one role each; a hook that authenticates and counts, and a decorator that
authorises.

Each worker remembers the keys it looked up for ``FLASHLOAN_KEY_CACHE_S`` seconds, unknown key
ids included, so a revoked key is refused by every worker at most that long after its
revocation (at once by the worker that revoked it).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, NoReturn

from flask import Flask, g, request
from sqlalchemy import Engine, select

from service.domain.permissions import roles_holding
from service.domain.principal import Principal
from service.ops.rate_limits import RateLimits
from service.persistence.tables import api_keys
from service.usecases.api_keys import (
    KEY_ID_LENGTH,
    KEY_PREFIX,
    hash_secret,
)
from service.web.errors import ApiError, may_answer
from service.web.limits import client_address, count_failure, count_request

__all__ = ["KeyRing", "current", "document_roles", "install_authentication", "requires"]

DEFAULT_CACHE_S = 30.0
# Keys each worker remembers, found and unknown alike; the oldest are forgotten first.
CACHE_CAPACITY = 4096
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="flashloan"'}


@dataclass(frozen=True, slots=True)
class _StoredKey:
    key_id: str
    name: str
    role: str
    secret_hash: str
    revoked: bool


class _Expiring:
    """A bounded map whose entries live ``ttl_s`` seconds; the oldest go first when full."""

    def __init__(self, ttl_s: float, capacity: int) -> None:
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[float, _StoredKey | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_id: str, now: float) -> tuple[bool, _StoredKey | None]:
        hit = self._entries.get(key_id)
        if hit is None:
            return False, None
        if now - hit[0] >= self.ttl_s:
            del self._entries[key_id]
            return False, None
        return True, hit[1]

    def put(self, key_id: str, value: _StoredKey | None, now: float) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[key_id] = (now, value)
        self._entries.move_to_end(key_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def pop(self, key_id: str) -> None:
        self._entries.pop(key_id, None)


class KeyRing:
    """Checks presented keys against the database, remembering lookups briefly per worker.

    Keys found and key ids not found are remembered apart, each map bounded, so a flood of
    made-up ids never pushes the real keys out and costs one lookup per id. Failed
    authentications count against the client's address; past the limit they are refused with
    a 429, while a valid key from the same address is still accepted.
    """

    def __init__(self, engine: Engine, limits: RateLimits, ttl_s: float = DEFAULT_CACHE_S,
                 capacity: int = CACHE_CAPACITY) -> None:
        self.engine = engine
        self.limits = limits
        self.ttl_s = ttl_s
        self._known = _Expiring(ttl_s, capacity)
        self._unknown = _Expiring(ttl_s, capacity)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    def forget(self, key_id: str) -> None:
        """Drop what this worker remembers of a key (after a change to it)."""
        with self._lock:
            self._known.pop(key_id)
            self._unknown.pop(key_id)

    def _remembered(self, key_id: str) -> tuple[bool, _StoredKey | None]:
        now = time.monotonic()
        with self._lock:
            found, stored = self._known.get(key_id, now)
            if found:
                return True, stored
            return self._unknown.get(key_id, now)

    def _look_up(self, key_id: str) -> _StoredKey | None:
        now = time.monotonic()
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        stored = None if row is None else _StoredKey(row.key_id, row.name, row.role,
                                                     row.secret_hash, row.revoked_at is not None)
        with self._lock:
            (self._unknown if stored is None else self._known).put(key_id, stored, now)
        return stored

    def authenticate(self, header: str | None, address: str) -> Principal:
        """Return the principal of an ``Authorization: Bearer`` header, or raise 401 (429
        when ``address`` has failed too often: a valid key is never refused for that)."""
        if not header or not header.startswith("Bearer "):
            self._refuse(address, "an API key is required (Authorization: Bearer <key>)")
        parts = header[len("Bearer "):].strip().split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != KEY_ID_LENGTH:
            self._refuse(address, "the API key is not valid")
        key_id, secret = parts[1], parts[2]
        # The key is checked before the address's failures: clients behind one proxy share an
        # address, and one client's bad keys must not lock the others out. A bad key past the
        # limit still gets a 429; that it was bad is no help to a guesser, its secret being
        # 256 random bits. A lookup by primary key is cheap, and an unknown id is remembered.
        found, stored = self._remembered(key_id)
        if not found:
            stored = self._look_up(key_id)
        if stored is None or stored.revoked or not hmac.compare_digest(
                stored.secret_hash, hash_secret(secret)):
            self._refuse(address, "the API key is not valid")
        return Principal(stored.key_id, stored.name, stored.role)

    def _refuse(self, address: str, message: str) -> NoReturn:
        count_failure(self.limits, address)
        raise ApiError(401, message, headers=_CHALLENGE)


def current() -> Principal:
    """The principal of the current request (set by the hook of
    :func:`install_authentication`)."""
    return g.principal


def install_authentication(app: Flask, keys: KeyRing, limits: RateLimits) -> None:
    """Authenticate every request to a view guarded by :func:`requires` before it runs, with
    ``keys``, and count it against the key's allowance in ``limits``.

    A request without a valid key is refused with a 401 (a 429 when its address has failed
    too often), one past its key's allowance with a 429; the principal is kept in ``g`` for
    ``requires`` to authorise. Every request of a key counts, the forbidden ones too. Other
    views, and the automatic answers to OPTIONS, are left alone.
    """

    @app.before_request
    def _authenticate() -> None:
        rule = request.url_rule
        if rule is None or request.endpoint is None:
            return
        if request.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
            return
        view = app.view_functions.get(request.endpoint)
        if getattr(view, "required_roles", None) is None:
            return
        principal = keys.authenticate(request.headers.get("Authorization"), client_address())
        g.principal = principal
        count_request(limits, f"key:{principal.key_id}")


def requires(capability: str, note: str = "") -> Callable:
    """Allow only the roles that hold ``capability`` (``service.domain.permissions``): a
    request another role makes is refused with a 403. The request was authenticated and
    counted before (:func:`install_authentication`); ``note`` adds to the operation's
    description, which documents the refusals (401, 403, 429) and 503."""
    roles = roles_holding(capability)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = g.get("principal")
            if principal is None:
                # Never in an app that create_app built: its hook authenticates first.
                raise RuntimeError(f"{view.__qualname__} requires {capability!r}, but no "
                                   "principal was authenticated: install_authentication "
                                   "guards the app")
            if principal.role not in roles:
                raise ApiError(403, f"the {principal.role} role may not do this")
            return view(*args, **kwargs)

        wrapper.capability = capability  # type: ignore[attr-defined]
        wrapper.required_roles = roles  # type: ignore[attr-defined]
        # The key is looked up and counted in shared stores, either of which may be down.
        return document_roles(*roles, note=note, capability=capability)(
            may_answer(401, 403, 429, 503)(wrapper))

    return decorate


def document_roles(*roles: str, note: str = "", capability: str | None = None) -> Callable:
    """Name the roles that may call a view in its OpenAPI operation: ``x-roles`` and in words,
    followed by ``note`` if any; ``x-capability`` names the row of the permission table that
    gives them.

    No roles: anyone may call it, without an API key.
    """
    from flask_smorest import Blueprint

    names = ", ".join(f"`{role}`" for role in roles) if roles else "anyone, no API key needed"
    description = f"**Roles:** {names}." + (f"\n\n{note}" if note else "")
    extensions = {"x-roles": list(roles)} | ({"x-capability": capability} if capability else {})
    return Blueprint.doc(**extensions, description=description)
