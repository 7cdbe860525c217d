"""Structured JSON logs with a request id; personal data and keys never reach them."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

# What the web layer adds to each line written while it answers a request (its request id).
LineContext = Callable[[], Mapping[str, Any]]

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
    """One JSON object per line: time, level, logger, message, the context's fields (the
    request id), extra fields."""

    def __init__(self, context: LineContext | None = None) -> None:
        super().__init__()
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
            # Which process wrote it: the workers of one host share a log.
            "pid": record.process,
        }
        if self.context is not None:
            entry.update(self.context())
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", context: LineContext | None = None) -> None:
    """Send the service's logs to stderr as JSON lines, each with what ``context`` adds."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(context))
    root = logging.getLogger("flashloan")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


