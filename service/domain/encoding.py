"""The text forms every table and audit payload shares: times, JSON, an answer's hash."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from audit.canonical import format_time, parse_time


def now_text(moment: datetime | None = None) -> str:
    """Return a time in the one text form every table uses."""
    return format_time(moment or datetime.now(UTC))


def time_of(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


ANSWER_HASH = "answer_sha256"
"""The payload field of the audit records that fix an application's answer (the decision and
each review step): the SHA-256 of the answer's JSON text as stored and sent."""


def answer_hash(text: str) -> str:
    """Return the SHA-256 of an answer's JSON text, as recorded under ``ANSWER_HASH``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
