"""Deciding a deferred application again, under the consent it was made with.

A deferred application has no decision: a required source did not answer. The channel asks
for it to be decided again (``POST /v1/applications/{id}/retry``), resending the applicant
as in the application. The service keeps the national ID only as its keyed HMAC, so the
applicant resent must hash to the application's subject; the consent it cites must still be
live. The new decision is recorded against the same application: its row is updated, and a
new ``decision.made`` record is appended with the attempt's number and the seq and hash of
the decision record it follows, so the chain keeps every attempt.

A retry of an application that is no longer deferred decides nothing: it answers the
application's current answer. Two retries racing for one application cannot both decide:
the row is updated only if it is still as the retry read it
(:class:`~service.usecases.attempts.Superseded`).

The scheduler (``flashloan applications retry-deferred``) runs the same retry for every
deferred application whose consent is live and whose applicant is kept sealed
(:mod:`service.persistence.sealing`), as the application's channel, with the actor
``system:scheduler``.
A sealed applicant lasts only while it may be needed: a decision erases it, and so do the
consent's withdrawal and, at the scheduler's run, its expiry. Applications deferred before
applicants were kept have none: their channel retries them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update

from audit import AuditStore, Pseudonymiser
from service.domain.encoding import loads, now_text
from service.domain.errors import ApplicantMismatch, DomainError, NotFound, NotRetryable
from service.domain.principal import Principal
from service.persistence.idempotency import Claim, IdempotencyKeys, Replay, body_hash
from service.persistence.sealing import ApplicantSeal, SealBroken
from service.persistence.tables import applications, consents, write_transaction
from service.usecases.attempts import Attempt, Superseded
from service.usecases.consents import lapsed_at, live_at

log = logging.getLogger("flashloan.retries")

SCHEDULER_KEY_ID = "scheduler"
SCHEDULER_ROLE = "system"

# Decides an application again under an attempt and returns the answer's JSON text: the
# decision flow's ``decide_again``. It raises Superseded if another retry decided it first.
DecideAgain = Callable[[Principal, dict, Claim | None, Attempt], str]


def _attempts_so_far(answer: dict, made: dict) -> tuple[dict, ...]:
    """The attempts an answer shows; a first answer, deferred, shows none yet."""
    if answer.get("attempts"):
        return tuple(answer["attempts"])
    return ({"attempt": int(made.get("attempt", 1)), "status": answer["status"],
             "missing_sources": answer["missing_sources"], "decided_at": answer["created_at"]},)


class RetryDesk:
    """Retries deferred applications through the decision flow.

    ``store`` holds the applications and their decision records, ``seal`` opens the
    applicants kept for the scheduler, ``idempotency`` holds a retry's Idempotency-Key,
    ``pseudonymiser`` checks the applicant resent against the application's subject and
    ``decide`` decides the application again (the flow's ``decide_again``).
    """

    def __init__(self, *, store: AuditStore, seal: ApplicantSeal, idempotency: IdempotencyKeys,
                 pseudonymiser: Pseudonymiser, decide: DecideAgain) -> None:
        self.store = store
        self.seal = seal
        self.idempotency = idempotency
        self.pseudonymiser = pseudonymiser
        self.decide = decide

    def retry(self, principal: Principal, application_id: str, applicant: dict,
              idempotency_key: str | None) -> str:
        """Decide a deferred application again; return the answer's JSON text.

        An application that is no longer deferred is answered as it stands.
        """
        row = self._own(principal, application_id)
        if idempotency_key is None:
            return self._decide(principal, row, applicant, None)
        digest = body_hash({"retry": application_id, "applicant": applicant})
        claim = self.idempotency.claim(principal.key_id, idempotency_key, digest)
        if isinstance(claim, Replay):
            return claim.response
        try:
            return self._decide(principal, self._own(principal, application_id), applicant,
                                claim)
        finally:
            # Once the retry is committed, answered as it stands, or failed; never raises.
            self.idempotency.release(claim)

    def retry_sealed(self, *, channel: str | None = None, limit: int | None = None,
                     min_age_s: float = 0.0) -> list[dict[str, Any]]:
        """Decide again the deferred applications whose applicant is kept and consent live.

        First erases the applicants kept under a consent that lapsed (withdrawn or expired).
        Returns one item per application, oldest first: its ``application_id``, ``channel``
        and ``outcome`` (the new status, ``erased`` for a lapsed consent, or ``failed`` with
        the ``error`` code).
        """
        engine = self.store.engine
        report = [{"application_id": aid, "channel": name, "outcome": "erased",
                   "error": None, "reason": reason}
                  for aid, name, reason in erase_lapsed(engine, channel=channel)]
        for row in sealed_due(engine, channel=channel, limit=limit, min_age_s=min_age_s):
            principal = Principal(key_id=SCHEDULER_KEY_ID, name=row.channel,
                                  role=SCHEDULER_ROLE)
            item: dict[str, Any] = {"application_id": row.application_id,
                                    "channel": row.channel, "error": None}
            try:
                applicant = self.seal.open(row.application_id, row.sealed_applicant)
                item["outcome"] = loads(self.retry(principal, row.application_id, applicant,
                                                   None))["status"]
            except SealBroken:
                log.error("a sealed applicant could not be opened: is FLASHLOAN_PII_KEY the "
                          "one it was sealed with?", extra={"application_id": row.application_id})
                item.update(outcome="failed", error="sealed_applicant_unreadable")
            except DomainError as exc:
                log.warning("the scheduler's retry failed",
                            extra={"application_id": row.application_id, "error_code": exc.code})
                item.update(outcome="failed", error=exc.code)
            report.append(item)
        return report

    def _own(self, principal: Principal, application_id: str):
        with self.store.engine.connect() as conn:
            row = conn.execute(select(applications).where(
                applications.c.application_id == application_id)).first()
        if row is None or row.channel != principal.name:
            raise NotFound("no such application")
        return row

    def _decide(self, principal: Principal, row, applicant: dict, claim) -> str:
        if row.status != "deferred":
            return str(row.answer)  # the key keeps no row: nothing was decided under it
        subject = self.pseudonymiser.national_id(applicant["national_id"])
        if subject != row.subject:
            raise ApplicantMismatch("the applicant is not the application's applicant",
                                    fields={"applicant.national_id": [
                                        "is not the national ID the application was made "
                                        "with"]})
        made = self.store.get(row.decision_seq) if row.decision_seq is not None else None
        if made is None or made.payload is None:
            raise NotRetryable("the application's decision record is not available, so it "
                               "cannot be decided again")
        answer = loads(row.answer)
        attempt = Attempt(
            application_id=row.application_id,
            number=int(made.payload.get("attempt", 1)) + 1,
            previous_seq=made.seq, previous_hash=made.record_hash,
            read_updated_at=row.updated_at, created_at=row.created_at,
            earlier_steps=(*answer["timeline"],
                           {"step": "retried", "at": now_text(), "ms": 0.0}),
            earlier_attempts=_attempts_so_far(answer, made.payload))
        facts = made.payload["facts"]
        body = {"applicant": applicant, "consent_id": row.consent_id,
                "request": {k: facts[k] for k in ("amount", "term_months", "purpose")}}
        try:
            return self.decide(principal, body, claim, attempt)
        except Superseded:
            log.info("a concurrent retry decided the application first",
                     extra={"application_id": row.application_id})
            return str(self._own(principal, row.application_id).answer)


def deferred_due(engine: Engine, *, min_age_s: float = 0.0, channel: str | None = None,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """The deferred applications a channel may retry now: consent live, deferred at least
    ``min_age_s`` ago; by channel, oldest first.

    ``retried_by`` says who can retry each: ``scheduler`` where the applicant is kept
    sealed, ``channel`` otherwise (an application deferred before applicants were kept).
    """
    now = now or datetime.now(UTC)
    statement = (
        select(applications.c.application_id, applications.c.channel,
               applications.c.consent_id, applications.c.created_at,
               applications.c.updated_at, applications.c.answer, consents.c.expires_at,
               applications.c.sealed_applicant.is_not(None).label("sealed"))
        .join(consents, consents.c.consent_id == applications.c.consent_id)
        .where(applications.c.status == "deferred",
               applications.c.updated_at <= now_text(now - timedelta(seconds=min_age_s)),
               live_at(now))
        .order_by(applications.c.channel, applications.c.created_at,
                  applications.c.application_id))
    if channel is not None:
        statement = statement.where(applications.c.channel == channel)
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    due = []
    for row in rows:
        answer = loads(row.answer)
        due.append({"channel": row.channel, "application_id": row.application_id,
                    "consent_id": row.consent_id, "consent_expires_at": row.expires_at,
                    "deferred_at": row.updated_at, "created_at": row.created_at,
                    "attempts": len(answer.get("attempts") or ()) or 1,
                    "missing_sources": answer["missing_sources"],
                    "retry": f"POST /v1/applications/{row.application_id}/retry",
                    "retried_by": "scheduler" if row.sealed else "channel"})
    return due


def sealed_due(engine: Engine, *, channel: str | None = None, limit: int | None = None,
               min_age_s: float = 0.0, now: datetime | None = None) -> list[Any]:
    """The deferred applications the scheduler may retry now: applicant kept, consent live,
    deferred at least ``min_age_s`` ago; oldest first."""
    now = now or datetime.now(UTC)
    statement = (
        select(applications.c.application_id, applications.c.channel,
               applications.c.sealed_applicant)
        .join(consents, consents.c.consent_id == applications.c.consent_id)
        .where(applications.c.status == "deferred",
               applications.c.sealed_applicant.is_not(None),
               applications.c.updated_at <= now_text(now - timedelta(seconds=min_age_s)),
               live_at(now))
        .order_by(applications.c.created_at, applications.c.application_id))
    if channel is not None:
        statement = statement.where(applications.c.channel == channel)
    if limit is not None:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(statement).all())


def erase_lapsed(engine: Engine, *, channel: str | None = None,
                 now: datetime | None = None) -> list[tuple[str, str, str]]:
    """Erase the sealed applicants no retry may use: consent withdrawn or expired, or the
    application no longer deferred. Returns (application_id, channel, why) for each."""
    now = now or datetime.now(UTC)
    statement = (
        select(applications.c.application_id, applications.c.channel, applications.c.status,
               consents.c.withdrawn_at, consents.c.expires_at)
        .join(consents, consents.c.consent_id == applications.c.consent_id, isouter=True)
        .where(applications.c.sealed_applicant.is_not(None),
               or_(applications.c.status != "deferred", consents.c.consent_id.is_(None),
                   lapsed_at(now)))
        .order_by(applications.c.created_at, applications.c.application_id))
    if channel is not None:
        statement = statement.where(applications.c.channel == channel)
    with write_transaction(engine) as conn:
        rows = conn.execute(statement).all()
        for row in rows:
            conn.execute(update(applications)
                         .where(applications.c.application_id == row.application_id)
                         .values(sealed_applicant=None))
    return [(row.application_id, row.channel,
             "decided" if row.status != "deferred"
             else "consent_withdrawn" if row.withdrawn_at is not None
             else "consent_expired") for row in rows]
