"""Who is signed in to the console: the session, its CSRF token and who may open each page.

The session cookie (signed by Flask, HttpOnly, SameSite=Strict) holds the key's id, name and
role, when the sign-in happened and a CSRF token; never the key itself. Every request checks
again that the key still exists and is not revoked, so revoking a key ends its console
sessions too. Each page names a capability of ``service.domain.permissions``, the table the API's
operations read too: a page shows what an operation answers to the same roles.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy import select

from service.domain.permissions import holds, roles_holding
from service.domain.principal import Principal
from service.persistence.tables import api_keys
from service.web.limits import caller, count_request
from service.web.wiring import wiring

# Who may sign in at all; each page then lets in those of them that hold its capability.
CONSOLE_ROLES = roles_holding("console.sign_in")
ROLE_LABELS = {"risk_officer": "Risk officer", "auditor": "Auditor", "admin": "Administrator",
               "channel": "Channel", "servicing": "Loan servicing"}
# What the keys of the roles that cannot open the console are for.
NOT_FOR_CONSOLE = {"channel": "a loan front-end",
                   "servicing": "the bank's loan-servicing system"}

# A session ends this long after sign-in, whatever happens in between.
SESSION_LIFETIME_S = 8 * 3600
CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    """Return the session's CSRF token, making one on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse (403) a form whose CSRF token is missing or not this session's."""
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(
            sent.encode(), expected.encode()):
        abort(403, description="The form has expired or did not come from this console. "
                               "Go back, reload the page and try again.")


def start_session(principal: Principal) -> None:
    """Start a fresh session for ``principal`` with a new CSRF token."""
    session.clear()
    session.update(key_id=principal.key_id, name=principal.name, role=principal.role,
                   since=int(time.time()), csrf=secrets.token_urlsafe(32))


def end_session() -> None:
    """Forget who is signed in."""
    session.clear()


def _key_row(key_id: str):
    with wiring().store.engine.connect() as conn:
        return conn.execute(select(api_keys.c.name, api_keys.c.role, api_keys.c.revoked_at)
                            .where(api_keys.c.key_id == key_id)).first()


def current_user() -> Principal | None:
    """Return who is signed in, or None; a revoked key or an old session signs out."""
    if "console_user" in g:
        return g.console_user
    user = None
    key_id, since = session.get("key_id"), session.get("since")
    if isinstance(key_id, str) and isinstance(since, int):
        if time.time() - since > SESSION_LIFETIME_S:
            end_session()
        else:
            row = _key_row(key_id)
            if (row is None or row.revoked_at is not None or row.role != session.get("role")
                    or row.role not in CONSOLE_ROLES):
                end_session()
            else:
                user = Principal(key_id, row.name, row.role)
    g.console_user = user
    return user


def signed_in_user() -> Principal:
    """Return who is signed in, in a view that :func:`requires_capability` has let through."""
    user = current_user()
    assert user is not None, "only views behind requires_capability ask for the signed-in user"
    return user


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path inside the console, else None (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return None
    if "\\" in target or target.startswith("//"):
        return None
    return target


def may(capability: str) -> bool:
    """Tell whether the signed-in user's role holds ``capability``."""
    user = current_user()
    return user is not None and holds(user.role, capability)


def per_key(view: Callable) -> Callable:
    """Count each call of ``view`` against its caller's allowance, the API's (see
    :func:`service.web.limits.caller`)."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        count_request(wiring().limits, caller())
        return view(*args, **kwargs)

    return limited


def requires_capability(capability: str) -> Callable:
    """Let in only signed-in users whose role holds ``capability``; others go to sign-in
    (none) or get 403."""
    roles = tuple(role for role in roles_holding(capability) if role in CONSOLE_ROLES)

    def decorate(view: Callable) -> Callable:
        limited = per_key(view)

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                here = request.full_path if request.method == "GET" else None
                target = safe_next(here.rstrip("?") if here else None)
                return redirect(url_for("console.sign_in", next=target))
            # The API's rate limit counts per key; the console's pages count with it.
            g.principal = user
            if user.role not in roles:
                abort(403, description=f"The {ROLE_LABELS[user.role].lower()} role cannot "
                                       "open this page.")
            if request.method == "POST":
                check_csrf()
            return limited(*args, **kwargs)

        wrapper.capability = capability  # type: ignore[attr-defined]
        wrapper.console_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate
