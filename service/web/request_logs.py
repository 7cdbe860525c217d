"""Every request's id (kept from a sane X-Request-Id or made) and its metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping

from flask import Flask, g, has_request_context, request

from service.ops.metrics import Metrics


def request_context() -> Mapping[str, str]:
    """The request id of the request being answered, for each log line written meanwhile."""
    if has_request_context() and g.get("request_id"):
        return {"request_id": g.request_id}
    return {}


def install_request_ids(app: Flask, metrics: Metrics) -> None:
    """Give every request an id (or keep a sane one from X-Request-Id) and echo it back;
    record each answer's method, route, status and time in ``metrics``."""
    pattern = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")

    @app.before_request
    def _start() -> None:
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if pattern.match(supplied) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if g.get("started") is not None:
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            metrics.request(request.method, endpoint, response.status_code,
                            time.perf_counter() - g.started)
        return response
