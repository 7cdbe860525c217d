"""Per-key rate limits (flask-limiter): in memory by default, Redis when configured."""

from __future__ import annotations

from flask import current_app, g, request
from flask_limiter import Limiter


def _caller() -> str:
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal is not None else f"ip:{request.remote_addr}"


def _rate() -> str:
    return current_app.config["FLASHLOAN_RATE_LIMIT"]


# Unbound until ``init_app``: the app factory chooses the storage.
limiter = Limiter(_caller, default_limits=[], headers_enabled=True)

# Applied to a view after authentication, so the limit counts per API key.
per_key = limiter.limit(_rate, key_func=_caller)
