"""One error envelope for every failure: ``{"error": {"code", "message", "fields"}}``.

The domain's errors (:mod:`service.domain.errors`) become statuses here, in one table; the
HTTP layer's own (authentication, rate limits, bodies) are :class:`ApiError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from copy import deepcopy
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.domain.errors import (
    ApplicantMismatch,
    ConsentInsufficient,
    ConsentInvalid,
    DecisionOutcomeUnknown,
    DecisionWithheld,
    DomainError,
    IdempotencyConflict,
    InProgress,
    InvalidInput,
    NotFound,
    NotRetryable,
    NotReviewable,
    NotScored,
    OutcomeConflict,
    RecordPurged,
    ReviewConflict,
)

log = logging.getLogger("flashloan.errors")

_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


# What each error status means, as the API description says it; an operation that answers one
# for a reason of its own adds that reason (see ``may_answer``).
MEANINGS = {
    400: "The body is not valid JSON: not UTF-8, malformed, or nested too deeply.",
    401: "No API key, or one that is not valid: malformed, unknown, revoked or with a wrong "
         "secret (`unauthenticated`).",
    403: "The key's role may not call this operation (`forbidden`).",
    404: "No such resource; a channel does not see another channel's (`not_found`).",
    409: "The request conflicts with the state of what it names (`conflict`).",
    413: "The body is larger than the service accepts (`payload_too_large`), whether sent "
         "with a Content-Length or chunked.",
    414: "The request line (method, path and query string) is longer than the HTTP server "
         "accepts, 4,094 bytes: the server refuses it with an HTML page of its own, before the "
         "service reads it.",
    415: "A body that is not JSON: send `Content-Type: application/json` "
         "(`unsupported_media_type`).",
    422: "A parameter or a field of the body is not valid; `fields` names each one "
         "(`invalid`).",
    429: "Too many requests with this key, or too many failed authentications from this "
         "address; retry after `Retry-After` seconds (`rate_limited`).",
    503: "A store the service depends on (its database, the rate limits' counters) cannot be "
         "reached or is busy; retry later (`unavailable`).",
}
# Statuses the HTTP server (gunicorn) answers itself, as HTML, never in the envelope.
SERVER_ANSWERS = frozenset({414})
# Headers that come with an error status: (name, description, always sent).
HEADERS = {
    401: [("WWW-Authenticate", "the scheme to authenticate with: `Bearer`", True)],
    429: [("Retry-After", "seconds until the limit's window ends", True)],
    503: [("Retry-After", "seconds to wait before retrying, when the service can tell", False)],
}


# The one place a domain error becomes an HTTP status. Every subclass of DomainError is named
# here, each on its own (a unit test walks them all): one left out is answered as an internal
# error, never with a status guessed from its base class.
DOMAIN_STATUSES: dict[type[DomainError], int] = {
    NotFound: 404,
    RecordPurged: 404,
    NotScored: 404,
    IdempotencyConflict: 409,
    InProgress: 409,
    ReviewConflict: 409,
    NotReviewable: 409,
    NotRetryable: 409,
    OutcomeConflict: 409,
    InvalidInput: 422,
    ConsentInvalid: 422,
    ConsentInsufficient: 422,
    ApplicantMismatch: 422,
    DecisionWithheld: 503,
    DecisionOutcomeUnknown: 503,
}


def status_for(exc: DomainError) -> int | None:
    """Return the HTTP status a domain error is answered with; None if it has none."""
    return DOMAIN_STATUSES.get(type(exc))


def may_answer(*statuses: int, why: Mapping[int, str] | None = None) -> Callable:
    """Document error statuses a view may answer, with the envelope; ``why`` says, for a
    status, the reasons particular to this view (the statuses it names are included).

    The views' Blueprint turns them into the operation's responses, beside those it derives
    from the view's route and arguments.
    """
    reasons = dict(why or {})
    for status in (*statuses, *reasons):
        if status not in MEANINGS:
            raise ValueError(f"status must be one of {sorted(MEANINGS)}; got {status}")

    def decorate(view: Callable) -> Callable:
        doc = deepcopy(getattr(view, "_apidoc", {}))
        errors = doc.setdefault("errors", {})
        for status in (*statuses, *reasons):
            notes = errors.setdefault(status, [])
            if status in reasons and reasons[status] not in notes:
                notes.append(reasons[status])
        view._apidoc = doc  # type: ignore[attr-defined]
        return view

    return decorate


class ApiError(Exception):
    """An error of the HTTP layer itself (authentication, rate limits, bodies, views), to answer
    with the envelope; the message is safe to show the client. The domain raises
    :class:`~service.domain.errors.DomainError` instead."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 fields: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


def envelope(status: int, message: str, *, code: str | None = None,
             fields: dict[str, list[str]] | None = None, headers: dict | None = None):
    """Return the JSON error response."""
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message,
                      "fields": fields or {}}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"applicant.national_id": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                out.update(_flatten(value, name))
            else:
                out[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
    elif messages:
        out[prefix or "_schema"] = [str(m) for m in (messages if isinstance(messages, list)
                                                     else [messages])]
    return out


def _validation_fields(exc: HTTPException) -> dict[str, list[str]]:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or {}
    # webargs nests by location (json, query, headers…); the field names are what matter.
    merged: dict[str, list[str]] = {}
    for location, fields in messages.items():
        flat = _flatten(fields)
        if location not in ("json", "query", "headers", "form", "files", "view_args"):
            flat = _flatten({location: fields})
        merged.update(flat)
    return merged


def answer_status(exc: DomainError) -> int:
    """The status a domain error is answered with: its own, or 500 (logged) for an error the
    table does not know."""
    status = status_for(exc)
    if status is None:
        log.error("a domain error has no status", extra={"error_type": type(exc).__name__})
        return 500
    return status


def register_error_handlers(app: Flask) -> None:
    """Answer every error with the envelope; never a stack trace or an internal name."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return envelope(exc.status, exc.message, code=exc.code, fields=exc.fields,
                        headers=exc.headers)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        status = answer_status(exc)
        if status == 500:
            return envelope(500, "internal error")
        return envelope(status, exc.message, code=exc.code, fields=exc.fields)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 422:
            fields = _validation_fields(exc)
            names = ", ".join(sorted(fields)) or "the body"
            return envelope(422, f"invalid input: {names}", fields=fields)
        if status == 413:
            return envelope(413, "request body is too large")
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        if status == 429:
            return envelope(429, "rate limit exceeded; retry later",
                            headers=dict(exc.get_headers() and
                                         [h for h in exc.get_headers() if h[0] == "Retry-After"]))
        message = exc.description if status < 500 and exc.description else _CODES.get(
            status, "error").replace("_", " ")
        return envelope(status, message, headers=headers)

    @app.errorhandler(DBAPIError)
    def _database(exc: DBAPIError):
        log.error("database unavailable", extra={"error_type": type(exc.orig).__name__})
        return envelope(503, "the database is unavailable; retry later", code="unavailable",
                        headers={"Retry-After": "5"})

    @app.errorhandler(TimeoutError)
    def _timeout(exc: TimeoutError):
        log.error("timed out waiting for a shared resource")
        return envelope(503, "the service is busy; retry later", code="unavailable",
                        headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return envelope(500, "internal error")
