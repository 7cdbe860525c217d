"""Searching recorded applications for risk officers: filters and keyset pages, newest first."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from audit.canonical import format_time
from service.domain.encoding import loads
from service.persistence.tables import applications

PAGE_SIZE = 25
OUTCOMES = ("approved", "declined", "deferred")
DECIDERS = ("model", "person")
_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
_APPLICATION_ID = re.compile(r"^a_[0-9a-f]{32}$")


class InvalidPageLink(ValueError):
    """A page cursor that this console did not make."""


@dataclass(frozen=True, slots=True)
class ApplicationFilters:
    """What a risk officer searches by; every filter given must hold."""

    outcome: str | None = None
    grade: str | None = None
    since: date | None = None
    until: date | None = None
    reason: str | None = None
    decided_by: str | None = None
    application_id: str | None = None

    def query_args(self) -> dict[str, str]:
        """The filters as URL query arguments (only those given)."""
        return {k: (v.isoformat() if isinstance(v, date) else v)
                for k, v in asdict(self).items() if v not in (None, "")}

    @property
    def any(self) -> bool:
        return bool(self.query_args())


def parse_filters(args: Mapping[str, str], grades: tuple[str, ...]
                  ) -> tuple[ApplicationFilters, dict[str, str]]:
    """Read the filters from a query string; return them and a message per bad field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}

    def choice(name: str, allowed: tuple[str, ...]) -> None:
        raw = (args.get(name) or "").strip()
        if raw and raw not in allowed:
            errors[name] = f"must be one of {', '.join(allowed)}"
        elif raw:
            values[name] = raw

    choice("outcome", OUTCOMES)
    choice("grade", grades)
    choice("decided_by", DECIDERS)
    for name in ("since", "until"):
        raw = (args.get(name) or "").strip()
        if raw:
            try:
                values[name] = date.fromisoformat(raw)
            except ValueError:
                errors[name] = "must be a date (YYYY-MM-DD)"
    if values.get("since") and values.get("until") and values["since"] > values["until"]:
        errors["until"] = "must not be before the start date"
    reason = (args.get("reason") or "").strip().upper()
    if reason:
        if _CODE.match(reason):
            values["reason"] = reason
        else:
            errors["reason"] = "must be a reason code such as K01 or R05"
    application_id = (args.get("application_id") or "").strip()
    if application_id:
        if _APPLICATION_ID.match(application_id):
            values["application_id"] = application_id
        else:
            errors["application_id"] = "must be an application id (a_ and 32 hex digits)"
    return ApplicationFilters(**values), errors


def _day_start(day: date) -> str:
    return format_time(datetime(day.year, day.month, day.day, tzinfo=UTC))


def encode_cursor(created_at: str, application_id: str) -> str:
    raw = json.dumps([created_at, application_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, application_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidPageLink("the page link is not valid") from None
    if not isinstance(created_at, str) or not isinstance(application_id, str):
        raise InvalidPageLink("the page link is not valid")
    return created_at, application_id


def search_applications(engine: Engine, filters: ApplicationFilters, cursor: str | None,
                        limit: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of matching applications, newest first, and the next page's cursor."""
    t = applications.c
    where = []
    if filters.outcome:
        where.append(t.status == filters.outcome)
    if filters.grade:
        where.append(t.grade == filters.grade)
    if filters.decided_by:
        where.append(t.decided_by == filters.decided_by)
    if filters.application_id:
        where.append(t.application_id == filters.application_id)
    if filters.since:
        where.append(t.created_at >= _day_start(filters.since))
    if filters.until and filters.until < date.max:  # every time is before the last day ends
        where.append(t.created_at < _day_start(filters.until + timedelta(days=1)))
    if filters.reason:
        # The answer is stored compactly ("code":"K01"); the code's pattern has no wildcard.
        where.append(t.answer.like(f'%"code":"{filters.reason}"%'))
    if cursor:
        created_at, application_id = decode_cursor(cursor)
        where.append(or_(t.created_at < created_at,
                         and_(t.created_at == created_at, t.application_id < application_id)))
    statement = (select(t.application_id, t.status, t.grade, t.decided_by, t.channel,
                        t.model_version, t.created_at, t.answer)
                 .where(*where).order_by(t.created_at.desc(), t.application_id.desc())
                 .limit(limit + 1))
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    items = []
    for row in rows[:limit]:
        answer = loads(row.answer)
        decision = answer.get("decision") or {}
        items.append({"application_id": row.application_id, "status": row.status,
                      "grade": row.grade, "decided_by": row.decided_by, "channel": row.channel,
                      "model_version": row.model_version, "created_at": row.created_at,
                      "credit_limit": decision.get("credit_limit"),
                      "pd": decision.get("pd"),
                      "reasons": decision.get("reasons", []),
                      "review": answer.get("review")})
    more = len(rows) > limit
    next_cursor = encode_cursor(rows[limit - 1].created_at,
                                rows[limit - 1].application_id) if more else None
    return items, next_cursor
