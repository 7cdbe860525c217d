"""Consents: recorded, read and withdrawn by channels; looked up by the consent gate.

Whether a consent allows an application or a query is the consent rule's to say
(:meth:`datasources.consent.Consent.check_for`); :func:`check_cited` tells a channel its
answer for an application.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, bindparam, insert, or_, select, update

from audit import AuditStore, Pseudonymiser
from canonical import parse_time
from datasources.consent import (
    EXPIRED,
    NOT_YET_VALID,
    OTHER_PURPOSE,
    OTHER_SUBJECT,
    SCOPE_NOT_COVERED,
    WITHDRAWN,
    Consent,
    ConsentRefused,
)
from service.domain.encoding import dumps, loads, now_text, time_of
from service.domain.errors import (
    ConsentInsufficient,
    ConsentInvalid,
    DomainError,
    InvalidInput,
    NotFound,
)
from service.domain.principal import Principal
from service.persistence.tables import applications, consents

MAX_VALIDITY = timedelta(days=366)
# Read at every application: built once, bound per call.
_BY_ID = select(consents).where(consents.c.consent_id == bindparam("consent_id"))
CLOCK_SKEW = timedelta(minutes=5)


def _status(row, now: datetime) -> str:
    """The consent's state as the API names it: live, withdrawn, expired or pending."""
    state = to_consent(row).state_at(now)
    return "pending" if state == NOT_YET_VALID else state


def live_at(now: datetime) -> ColumnElement[bool]:
    """The consents live at ``now`` (:meth:`Consent.state_at`), as a condition on the table.

    For choosing rows in SQL only: what a consent allows is decided by
    :meth:`Consent.check_for` when it is used.
    """
    at = now_text(now)
    return and_(or_(consents.c.withdrawn_at.is_(None), consents.c.withdrawn_at > at),
                consents.c.granted_at <= at, consents.c.expires_at > at)


def lapsed_at(now: datetime) -> ColumnElement[bool]:
    """The consents that will never be live again after ``now``: withdrawn or expired."""
    at = now_text(now)
    return or_(consents.c.withdrawn_at <= at, consents.c.expires_at <= at)


def to_view(row, now: datetime | None = None) -> dict[str, Any]:
    """Return a consent row as the API shows it (never the subject)."""
    now = now or datetime.now(UTC)
    return {"consent_id": row.consent_id, "scopes": loads(row.scopes), "purpose": row.purpose,
            "granted_at": row.granted_at, "expires_at": row.expires_at,
            "text_version": row.text_version, "channel": row.channel,
            "status": _status(row, now), "withdrawn_at": row.withdrawn_at,
            "created_at": row.created_at}


def check_cited(consent: Consent | None, *, channel: str, subject: str, scopes: Iterable[str],
                now: datetime) -> Consent:
    """Return the consent an application cites if the consent rule allows the application.

    Otherwise raise ConsentInvalid (not this channel's, another applicant's, not live) or
    ConsentInsufficient (``scopes`` not all covered), worded for the channel. Another
    channel's consent is told as one that does not exist: a channel learns nothing of it.
    """
    if consent is None:
        raise _no_such_consent()
    try:
        consent.check_for(subject=subject, channel=channel, scopes=scopes, now=now)
    except ConsentRefused as refused:
        raise _refusal(refused) from refused
    return consent


_STATES = {WITHDRAWN: "withdrawn", EXPIRED: "expired", NOT_YET_VALID: "not yet in force"}


def _refusal(refused: ConsentRefused) -> DomainError:
    if refused.why == SCOPE_NOT_COVERED:
        missing = ", ".join(refused.missing)
        return ConsentInsufficient(f"the consent does not cover: {missing}",
                                   fields={"consent_id": [f"missing scopes: {missing}"]})
    if refused.why == OTHER_SUBJECT:
        return ConsentInvalid("the consent belongs to another applicant",
                              fields={"consent_id": ["consent belongs to another applicant"]})
    if refused.why == OTHER_PURPOSE:
        return ConsentInvalid("the consent is not for a credit application",
                              fields={"consent_id": ["consent is not for a credit application"]})
    if refused.why in _STATES:
        state = _STATES[refused.why]
        return ConsentInvalid(f"the consent is {state}",
                              fields={"consent_id": [f"consent is {state}"]})
    return _no_such_consent()  # another channel's


def _no_such_consent() -> ConsentInvalid:
    return ConsentInvalid("consent_id does not name a consent of this channel",
                          fields={"consent_id": ["no such consent"]})


def to_consent(row) -> Consent:
    """Return a consent row as the consent gate's model."""
    return Consent(consent_id=row.consent_id, subject=row.subject,
                   scopes=frozenset(loads(row.scopes)), purpose=row.purpose,
                   granted_at=parse_time(row.granted_at), expires_at=parse_time(row.expires_at),
                   text_version=row.text_version, channel=row.channel,
                   withdrawn_at=time_of(row.withdrawn_at))


class ConsentBook:
    """The consents table, with every change written to the audit log in the same transaction."""

    def __init__(self, store: AuditStore, pseudonymiser: Pseudonymiser) -> None:
        self.store = store
        self.engine: Engine = store.engine
        self.pseudonymiser = pseudonymiser

    def record(self, principal: Principal, body: dict) -> dict[str, Any]:
        """Record a consent made by the applicant in the channel's front-end."""
        if body["channel"] != principal.name:
            raise InvalidInput("channel must be the calling channel's name",
                               fields={"channel": [f"must be {principal.name!r}"]})
        now = datetime.now(UTC)
        if body["granted_at"] > now + CLOCK_SKEW:
            raise InvalidInput("granted_at must not be in the future",
                               fields={"granted_at": ["must not be in the future"]})
        if body["expires_at"] <= now:
            raise InvalidInput("expires_at must be in the future",
                               fields={"expires_at": ["must be in the future"]})
        if body["expires_at"] - body["granted_at"] > MAX_VALIDITY:
            raise InvalidInput("a consent may last at most one year",
                               fields={"expires_at": ["must be within a year of granted_at"]})
        consent = Consent(consent_id=f"c_{uuid.uuid4().hex}",
                          subject=self.pseudonymiser.national_id(body["national_id"]),
                          scopes=frozenset(body["scopes"]), purpose=body["purpose"],
                          granted_at=body["granted_at"], expires_at=body["expires_at"],
                          text_version=body["text_version"], channel=body["channel"])
        terms = consent.to_dict()
        row = {"consent_id": consent.consent_id, "subject": consent.subject,
               "channel": consent.channel, "key_id": principal.key_id,
               "scopes": dumps(terms["scopes"]), "purpose": consent.purpose,
               "granted_at": now_text(consent.granted_at),
               "expires_at": now_text(consent.expires_at),
               "text_version": consent.text_version, "created_at": now_text(now),
               "withdrawn_at": None}
        with self.store.writer() as writer:
            writer.connection.execute(insert(consents).values(**row))
            writer.append("consent.recorded",
                          {**terms, "consent_digest": consent.digest()},
                          actor=principal.actor)
        return to_view(SimpleNamespace(**row), now)

    def row(self, consent_id: str):
        with self.engine.connect() as conn:
            return conn.execute(_BY_ID, {"consent_id": consent_id}).first()

    def cited(self, consent_id: str) -> Consent | None:
        """Return the consent an application cites, as the consent gate's model."""
        row = self.row(consent_id)
        return None if row is None else to_consent(row)

    def visible(self, principal: Principal, consent_id: str):
        """Return a consent the caller may see; another channel's is not found."""
        row = self.row(consent_id)
        if row is None or (principal.role == "channel" and row.channel != principal.name):
            raise NotFound("no such consent")
        return row

    def withdraw(self, principal: Principal, consent_id: str) -> dict[str, Any]:
        """Withdraw a consent: every later source query under it is refused."""
        now = datetime.now(UTC)
        with self.store.writer() as writer:
            conn = writer.connection
            row = conn.execute(select(consents).where(
                consents.c.consent_id == consent_id)).first()
            if row is None or row.channel != principal.name:
                raise NotFound("no such consent")
            if row.withdrawn_at is None:
                conn.execute(update(consents).where(consents.c.consent_id == consent_id)
                             .values(withdrawn_at=now_text(now)))
                # A deferred application under it will not be decided: its sealed applicant
                # goes with the consent.
                conn.execute(update(applications).where(
                    applications.c.consent_id == consent_id,
                    applications.c.sealed_applicant.is_not(None)).values(sealed_applicant=None))
                writer.append("consent.withdrawn",
                              {"consent_id": consent_id, "subject": row.subject,
                               "withdrawn_at": now_text(now)}, actor=principal.actor)
            row = conn.execute(select(consents).where(
                consents.c.consent_id == consent_id)).first()
        return to_view(row, now)

    def lookup(self, consent_id: str) -> Consent | None:
        """The consent gate's lookup: read at every query, so a withdrawal applies at once."""
        row = self.row(consent_id)
        return None if row is None else to_consent(row)

