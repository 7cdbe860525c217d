"""The console's blueprint: security headers, HTML error pages and what every page shows."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.domain.errors import DomainError
from service.web.console.access import CSRF_FIELD, ROLE_LABELS, csrf_token, current_user, may
from service.web.errors import ApiError, answer_status
from service.web.formatting import FILTERS

log = logging.getLogger("flashloan.console")

SERVICE_DIR = Path(__file__).resolve().parents[1]

bp = Blueprint("console", __name__, url_prefix="/console",
               template_folder=str(SERVICE_DIR / "templates"),
               static_folder=str(SERVICE_DIR / "static" / "console"),
               static_url_path="/static")

SECURITY_HEADERS = {
    # No script runs in the console and nothing is loaded from elsewhere; the charts are
    # inline SVG, which needs neither.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'none'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

TITLES = {400: "The request was not understood", 401: "Sign in to continue",
          403: "Not allowed", 404: "Not found", 405: "Not allowed here",
          409: "Already done", 413: "Too large", 422: "Something in the form is wrong",
          429: "Too many requests", 500: "Something went wrong",
          503: "Temporarily unavailable"}


for _name, _filter in FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


@bp.context_processor
def _page_context() -> dict:
    user = current_user()
    # may('audit.read'): whether the menu, tiles and links lead to a page the role may open.
    return {"user": user, "role_label": ROLE_LABELS.get(user.role) if user else None,
            "csrf_token": csrf_token, "csrf_field": CSRF_FIELD, "may": may}


@bp.after_request
def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint == "console.static":
        response.headers["Cache-Control"] = "public, max-age=3600"
    else:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def error_page(status: int, message: str, headers: dict | None = None):
    """Render the console's error page."""
    body = render_template("console/error.html", status=status,
                           title=TITLES.get(status, "Error"), message=message)
    return body, status, headers or {}


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    # Retry-After of a 429 or 503 reaches the browser too.
    return error_page(exc.status, exc.message, exc.headers)


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    status = answer_status(exc)
    if status == 500:
        return error_page(500, "The console could not answer; try again in a moment.")
    return error_page(status, exc.message)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    status = exc.code or 500
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    message = (exc.description if status < 500 and exc.description
               else "The console could not answer; try again in a moment.")
    return error_page(status, message, headers)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    log.exception("unhandled console error", extra={"error_type": type(exc).__name__})
    return error_page(500, "The console could not answer; try again in a moment.")


@bp.route("/<path:unknown>")
def not_found(unknown: str):
    """Answer unknown console paths with the console's own page."""
    return error_page(404, "There is no such console page. Use the menu above.")
