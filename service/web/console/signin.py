"""Signing in with an API key, signing out, and the home page of each role."""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, url_for

from service.web.console.access import (
    CONSOLE_ROLES,
    NOT_FOR_CONSOLE,
    check_csrf,
    current_user,
    end_session,
    per_key,
    requires_capability,
    safe_next,
    start_session,
)
from service.web.console.blueprint import bp
from service.web.errors import ApiError
from service.web.limits import client_address
from service.web.wiring import wiring

log = logging.getLogger("flashloan.console")


def _render_sign_in(error: str | None = None, status: int = 200,
                    headers: dict[str, str] | None = None):
    settings = wiring().settings
    dev_keys = None if settings.is_production else str(settings.var_dir / "dev-keys.txt")
    return render_template("console/sign_in.html", error=error, dev_keys=dev_keys,
                           next=safe_next(request.values.get("next"))), status, headers or {}


@bp.route("/sign-in", methods=["GET", "POST"])
@per_key
def sign_in():
    """Show the sign-in form; take an API key and start a session for its role."""
    if request.method == "GET":
        if current_user() is not None:
            return redirect(url_for("console.home"))
        return _render_sign_in()
    check_csrf()
    key = request.form.get("api_key", "").strip()
    if not key:
        return _render_sign_in("Paste an API key to sign in.", 400)
    try:
        principal = wiring().keys.authenticate(f"Bearer {key}", client_address())
    except ApiError as exc:
        if exc.status == 429:
            wait = exc.headers.get("Retry-After", "60")
            return _render_sign_in("Too many keys that are not valid came from this address. "
                                   f"Try again in {wait} seconds.", 429, exc.headers)
        return _render_sign_in("That API key is not valid. Check that it was copied whole, "
                               "and that it has not been revoked.", 401)
    if principal.role not in CONSOLE_ROLES:
        log.info("console sign-in refused", extra={"key_id": principal.key_id,
                                                    "role": principal.role})
        meant_for = NOT_FOR_CONSOLE.get(principal.role, "another use")
        return _render_sign_in(f"A {principal.role} key is for {meant_for} and cannot open "
                               "the console. Sign in with a risk officer, auditor or "
                               "administrator key.", 403)
    start_session(principal)
    log.info("console sign-in", extra={"key_id": principal.key_id, "role": principal.role})
    return redirect(safe_next(request.form.get("next")) or url_for("console.home"), 303)


@bp.route("/sign-out", methods=["GET", "POST"])
def sign_out():
    """Ask to confirm (GET), or end the session (POST)."""
    user = current_user()
    if request.method == "GET":
        if user is None:
            return redirect(url_for("console.sign_in"))
        return render_template("console/sign_out.html")
    if user is not None:
        check_csrf()
        log.info("console sign-out", extra={"key_id": user.key_id, "role": user.role})
    end_session()
    flash("You are signed out.", "info")
    return redirect(url_for("console.sign_in"), 303)


@bp.route("/")
@requires_capability("console.sign_in")
def home():
    """The start page: what this role can do here."""
    return render_template("console/home.html")
