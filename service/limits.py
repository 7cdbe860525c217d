"""Per-key rate limits (flask-limiter): in memory by default, Redis when configured."""

from __future__ import annotations

import time
from typing import ClassVar

from flask import current_app, g, request
from flask_limiter import Limiter
from limits.storage import MemoryStorage


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, expiring counters inline at most once a second.

    The stock storage starts a timer thread whenever its last one has finished — on a busy
    worker, a new thread for nearly every request. Expiring inline keeps the same counting
    without that cost.
    """

    STORAGE_SCHEME: ClassVar[list[str]] = ["flashloan-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()
        self._next_sweep = 0.0

    # Overrides the parent's name-mangled private hook.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()

    def get(self, key: str) -> int:
        # A counter past its expiry counts as zero even before the next sweep.
        expiry = self.expirations.get(key)
        if expiry is not None and expiry <= time.time():
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
        return super().get(key)


def _caller() -> str:
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal is not None else f"ip:{request.remote_addr}"


def _rate() -> str:
    return current_app.config["FLASHLOAN_RATE_LIMIT"]


# Unbound until ``init_app``: the app factory chooses the storage.
limiter = Limiter(_caller, default_limits=[], headers_enabled=True)

# Applied to a view after authentication, so the limit counts per API key.
per_key = limiter.limit(_rate, key_func=_caller)
