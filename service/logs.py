"""Structured JSON logs with a request id; personal data and keys never reach them."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# Defence in depth: whatever a message carries, these never leave the process.
_SCRUB = (
    (re.compile(r"\b\d{17}[\dXx]\b"), "[national-id]"),
    (re.compile(r"\b1[3-9]\d{9}\b"), "[mobile]"),
    (re.compile(r"\bfl_[0-9a-f]{12}_[A-Za-z0-9_\-]+"), "[api-key]"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer [redacted]"),
)


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
            # Which process wrote it: the workers of one host share a log.
            "pid": record.process,
        }
        if has_request_context() and g.get("request_id"):
            entry["request_id"] = g.request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the service's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("flashloan")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def install_request_ids(app: Flask) -> None:
    """Give every request an id (or keep a sane one from X-Request-Id) and echo it back."""
    pattern = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")

    @app.before_request
    def _start() -> None:
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if pattern.match(supplied) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        from service.wiring import maybe_wiring

        wired = maybe_wiring()
        if wired is not None and g.get("started") is not None:
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            wired.metrics.request(request.method, endpoint, response.status_code,
                                  time.perf_counter() - g.started)
        return response
