"""The rate limits over HTTP: who a request counts against, the answers past a limit (429, or
503 when the counters cannot be reached), and the allowance headers.

The counting itself, and where the counters are kept, is :mod:`service.ops.rate_limits`;
the composition root gives each app its own :class:`~service.ops.rate_limits.RateLimits`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response, g, request

from service.ops.rate_limits import CountersUnavailable, LimitExceeded, RateLimits
from service.web.errors import ApiError

__all__ = ["caller", "client_address", "count_failure", "count_request",
           "install_limit_headers"]


@contextmanager
def _answered() -> Iterator[None]:
    """Turn a count past its limit into a 429, and counters out of reach into a 503."""
    try:
        yield
    except LimitExceeded as exc:
        raise ApiError(429, exc.message, code="rate_limited",
                       headers={"Retry-After": str(exc.retry_after_s)}) from None
    except CountersUnavailable as exc:
        raise ApiError(503, "the service cannot count its rate limits; retry later",
                       code="unavailable",
                       headers={"Retry-After": str(exc.retry_after_s)}) from None


def count_request(limits: RateLimits, counted: str) -> None:
    """Count one request of ``counted`` (``key:<id>`` or ``address:<ip>``) against
    ``limits``; past the limit, refuse it with a 429. The allowance left goes in the
    answer's headers (:func:`install_limit_headers`)."""
    with _answered():
        remaining = limits.count_request(counted)
    if remaining is not None:
        g.rate_limit = remaining


def count_failure(limits: RateLimits, address: str) -> None:
    """Count a failed authentication from ``address``; past the limit, refuse with a 429."""
    with _answered():
        limits.count_failure(address)


def caller() -> str:
    """Whom a request counts against: its API key once authenticated, else its address."""
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal is not None else f"address:{client_address()}"


def client_address() -> str:
    """The client's address (the one the trusted proxies forwarded, when there are any)."""
    return request.remote_addr or "unknown"


def install_limit_headers(app: Flask) -> None:
    """Tell callers their allowance: ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``."""

    @app.after_request
    def _headers(response: Response) -> Response:
        counted = g.get("rate_limit")
        if counted is not None:
            response.headers["X-RateLimit-Limit"] = str(counted[0])
            response.headers["X-RateLimit-Remaining"] = str(counted[1])
        return response
