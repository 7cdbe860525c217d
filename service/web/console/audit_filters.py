"""The auditor's search form: read, check and carry the filters of an audit-log search.

A national ID typed into the form is turned into its keyed HMAC (the ``subject`` the log is
indexed by) as soon as it arrives; only that pseudonym goes into links and the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from audit import AuditQuery, Pseudonymiser
from datasources.identity import InvalidNationalId, parse_national_id
from service.web.schemas import to_utc

PAGE_SIZE = 50
KINDS = ("consent.recorded", "consent.withdrawn", "application.received",
         "application.retried", "source.fetched", "decision.made", "review.requested",
         "review.resolved", "audit.queried", "records.purged", "key.created", "key.revoked")
OUTCOMES = ("approved", "declined", "deferred")
_SUBJECT = re.compile(r"^[0-9a-f]{64}$")
_TEXT_LIMITS = {"application_id": 64, "actor": 128, "model_version": 64, "reason_code": 16}


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What an auditor searches by; ``since`` inclusive, ``until`` exclusive, both UTC."""

    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None
    application_id: str | None = None
    actor: str | None = None
    subject: str | None = None
    outcome: str | None = None
    model_version: str | None = None
    reason_code: str | None = None

    def query(self) -> AuditQuery:
        return AuditQuery(since=self.since, until=self.until,
                          kinds=(self.kind,) if self.kind else (),
                          application_id=self.application_id, actor=self.actor,
                          subject=self.subject, outcome=self.outcome,
                          model_version=self.model_version, reason_code=self.reason_code)

    def query_args(self) -> dict[str, str]:
        """The filters as URL query arguments: times as UTC without a zone, the pseudonym."""
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if isinstance(value, datetime):
                out[name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            elif value:
                out[name] = value
        return out

    @property
    def any(self) -> bool:
        return bool(self.query_args())


def _time(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return to_utc(moment)


def parse_filters(args: Mapping[str, str], pseudonymiser: Pseudonymiser | None = None
                  ) -> tuple[AuditFilters, dict[str, str]]:
    """Read the filters from a query string or the search form; return them and errors.

    A ``national_id`` is accepted only when ``pseudonymiser`` is given (from the form, sent
    by POST), and is replaced by its pseudonym.
    """
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    for name in ("since", "until"):
        raw = (args.get(name) or "").strip()
        if raw:
            try:
                values[name] = _time(raw)
            except ValueError:
                errors[name] = ("must be a date and time between 0001-01-01 and 9999-12-31 "
                                "in UTC, such as 2026-11-22T09:30")
    since, until = values.get("since"), values.get("until")
    if isinstance(since, datetime) and isinstance(until, datetime) and since >= until:
        errors["until"] = "must be after the start"
    kind = (args.get("kind") or "").strip()
    if kind:
        if kind in KINDS:
            values["kind"] = kind
        else:
            errors["kind"] = "must be one of the kinds listed"
    outcome = (args.get("outcome") or "").strip()
    if outcome:
        if outcome in OUTCOMES:
            values["outcome"] = outcome
        else:
            errors["outcome"] = f"must be one of {', '.join(OUTCOMES)}"
    for name, limit in _TEXT_LIMITS.items():
        raw = (args.get(name) or "").strip()
        if raw:
            if len(raw) > limit:
                errors[name] = f"must be at most {limit} characters"
            else:
                values[name] = raw.upper() if name == "reason_code" else raw
    subject = (args.get("subject") or "").strip().lower()
    if subject:
        if _SUBJECT.match(subject):
            values["subject"] = subject
        else:
            errors["subject"] = "must be an applicant pseudonym (64 hex digits)"
    national_id = (args.get("national_id") or "").strip()
    if national_id and pseudonymiser is not None:
        try:
            parse_national_id(national_id)
        except InvalidNationalId:
            # The value is personal data: say what is wrong, never repeat it.
            errors["national_id"] = ("is not a valid national ID (18 characters with a known "
                                     "region, a birth date and a matching check digit)")
        else:
            values["subject"] = pseudonymiser.national_id(national_id)
    return AuditFilters(**values), errors  # type: ignore[arg-type]
