"""Human review (PIPL Art. 24): a channel asks for it, a risk officer resolves it."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from sqlalchemy import and_, or_, select, update

from audit import AuditStore
from scoring.governance.catalogue import AMENDED_REASON, OVERTURNED_REASON
from scoring.online.explanation import recorded_facts
from scoring.online.policy import Policy
from scoring.online.review_terms import TermsRefused, terms_by_person
from service.domain.encoding import ANSWER_HASH, answer_hash, dumps, loads, now_text
from service.domain.errors import InvalidInput, NotFound, NotReviewable, ReviewConflict
from service.domain.principal import Principal
from service.ops.logs import scrub
from service.persistence.tables import applications, reviews
from service.usecases.applications import ApplicationBook
from service.usecases.replay import Replayer

# What each resolution may change: the statuses it applies to and the reason it gives.
RESOLUTIONS = {"upheld": (("approved", "declined"), None),
               "overturned": (("declined",), OVERTURNED_REASON),
               "amended": (("approved",), AMENDED_REASON)}


_WRONG_STATUS = {"upheld": "only an approval or a decline can be upheld",
                 "overturned": "only a decline can be overturned; uphold or amend an approval",
                 "amended": "only an approval can be amended; overturn a decline"}


def _cursor(created_at: str, review_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}|{review_id}".encode()).decode()


def _uncursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, review_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except Exception:
        raise InvalidInput("cursor is not valid", fields={"cursor": ["not valid"]}) from None
    return created_at, review_id


def review_view(row) -> dict[str, Any]:
    return {"review_id": row.review_id, "application_id": row.application_id,
            "state": row.state, "reason": row.reason, "outcome": row.outcome,
            "note": row.note, "resolved_by": row.resolved_by, "created_at": row.created_at,
            "resolved_at": row.resolved_at}


class ReviewDesk:
    """Review requests and their resolution, each step audited with the application's change."""

    def __init__(self, store: AuditStore, replayer: Replayer,
                 applications: ApplicationBook) -> None:
        self.store = store
        self.replayer = replayer
        self.applications = applications

    def request(self, principal: Principal, application_id: str, reason: str) -> dict:
        """File the applicant's request for a person to look at an automated decision."""
        now = now_text()
        with self.store.writer() as writer:
            conn = writer.connection
            app = conn.execute(select(applications).where(
                applications.c.application_id == application_id)).first()
            if app is None or app.channel != principal.name:
                raise NotFound("no such application")
            if app.status == "deferred":
                raise NotReviewable("a deferred application has no decision to review: it is "
                                    "retried, not reviewed (POST /v1/applications/"
                                    f"{application_id}/retry decides it once its sources "
                                    "answer)")
            if app.decided_by == "person":
                raise ReviewConflict("this decision was already made by a person")
            open_review = conn.execute(select(reviews.c.review_id).where(
                reviews.c.application_id == application_id, reviews.c.state == "open")).first()
            if open_review is not None:
                raise ReviewConflict("a review of this application is already open")
            review_id = f"r_{uuid.uuid4().hex}"
            row = {"review_id": review_id, "application_id": application_id,
                   "channel": principal.name, "key_id": principal.key_id, "reason": reason,
                   "state": "open", "created_at": now}
            conn.execute(reviews.insert().values(**row))
            answer = loads(app.answer)
            answer["review"] = {"review_id": review_id, "state": "open", "outcome": None}
            answer["timeline"].append({"step": "review_requested", "at": now, "ms": 0.0})
            answer_text = dumps(answer)
            conn.execute(update(applications).where(
                applications.c.application_id == application_id).values(
                answer=answer_text, updated_at=now))
            # The applicant's words may hold personal data: the log keeps their digest.
            writer.append("review.requested", {
                "application_id": application_id, "review_id": review_id,
                "subject": app.subject,
                "reason_sha256": hashlib.sha256(reason.encode()).hexdigest(),
                "reason_length": len(reason), ANSWER_HASH: answer_hash(answer_text)},
                application_id=application_id, actor=principal.actor)
        return self.get(review_id, explained=False)

    def get(self, review_id: str, *, explained: bool = True) -> dict:
        """Return a review with its application's answer and, if ``explained``, the
        explanation (a risk officer's reading; the channel's has none)."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(reviews).where(reviews.c.review_id == review_id)).first()
            if row is None:
                raise NotFound("no such review")
            app = conn.execute(select(applications).where(
                applications.c.application_id == row.application_id)).first()
        view = {**review_view(row), "application": loads(app.answer)}
        if explained:
            view["explanation"] = self.applications.explanation_or_none(app)
        return view

    def list(self, state: str | None, limit: int, cursor: str | None) -> dict:
        # One query: each review with its application's answer.
        statement = (select(reviews, applications.c.answer)
                     .join(applications,
                           applications.c.application_id == reviews.c.application_id)
                     .order_by(reviews.c.created_at, reviews.c.review_id))
        if state:
            statement = statement.where(reviews.c.state == state)
        if cursor:
            created_at, review_id = _uncursor(cursor)
            statement = statement.where(or_(
                reviews.c.created_at > created_at,
                and_(reviews.c.created_at == created_at, reviews.c.review_id > review_id)))
        with self.store.engine.connect() as conn:
            rows = conn.execute(statement.limit(limit + 1)).all()
        items = [{**review_view(row), "application": loads(row.answer)} for row in rows[:limit]]
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return {"items": items,
                "next_cursor": _cursor(last.created_at, last.review_id) if last else None}

    def resolve(self, principal: Principal, review_id: str, outcome: str, note: str,
                terms: dict[str, float] | None = None) -> dict:
        """Uphold the automated decision, overturn a decline into an approval, or amend an
        approval's line or rate.

        ``terms`` (``credit_limit`` and ``annual_rate``) are the officer's own, within the
        policy's approving grades and the caps: required to amend, optional to overturn
        (without them the policy's usual terms apply), refused to uphold.
        """
        statuses, reason = RESOLUTIONS[outcome]
        if outcome == "upheld" and terms:
            raise InvalidInput("terms are set only when overturning or amending a decision",
                               fields={"terms": ["only with outcome overturned or amended"]})
        if outcome == "amended" and not terms:
            raise InvalidInput("amending a decision needs the terms: credit_limit and "
                               "annual_rate", fields={"terms": ["required to amend"]})
        now = now_text()
        with self.store.writer() as writer:
            conn = writer.connection
            row = conn.execute(select(reviews).where(reviews.c.review_id == review_id)).first()
            if row is None:
                raise NotFound("no such review")
            if row.state != "open":
                raise ReviewConflict("this review is already resolved")
            app = conn.execute(select(applications).where(
                applications.c.application_id == row.application_id)).first()
            answer = loads(app.answer)
            if app.status not in statuses:
                raise ReviewConflict(_WRONG_STATUS[outcome],
                                     fields={"outcome": [_WRONG_STATUS[outcome]]})
            values: dict[str, Any] = {"updated_at": now, "sealed_applicant": None}
            change: dict[str, Any] = {}
            policy: Policy | None = None
            if reason is not None:
                policy = self._policy(app.application_id)
                change = (self._chosen(policy, terms) if terms
                          else self._approval(app.application_id, policy, answer))
                before = {k: answer["decision"][k] for k in change}
                answer["status"] = "approved"
                answer["decided_by"] = "person"
                answer["decision"].update({**change, "reasons": [reason]})
                # The model's line bound and suggestions no longer describe a person's terms.
                answer["decision"].pop("recourse", None)
                answer["decision"].pop("partial", None)
                values.update(status="approved", outcome="approved", grade=change["grade"],
                              decided_by="person")
            answer["review"] = {"review_id": review_id, "state": "resolved", "outcome": outcome}
            answer["timeline"].append({"step": "review_resolved", "at": now, "ms": 0.0})
            values["answer"] = dumps(answer)
            conn.execute(update(applications).where(
                applications.c.application_id == app.application_id).values(**values))
            clean_note = scrub(note)
            conn.execute(update(reviews).where(reviews.c.review_id == review_id).values(
                state="resolved", outcome=outcome, note=clean_note, resolved_by=principal.actor,
                resolved_at=now))
            writer.append("review.resolved", {
                "application_id": app.application_id, "review_id": review_id,
                "subject": app.subject, "resolution": outcome, "note": clean_note,
                "outcome": answer["status"], "decided_by": answer["decided_by"],
                "decision": change or None, "before": before if change else None,
                "terms_chosen_by": ("person" if terms else "policy") if change else None,
                # The policy the terms were checked against: the decision's own.
                "policy_version": policy.version if policy is not None else None,
                "policy_digest": policy.digest if policy is not None else None,
                # As the review's row says: an overturned decline's loan was approved then.
                "resolved_at": now,
                ANSWER_HASH: answer_hash(values["answer"])},
                application_id=app.application_id, actor=principal.actor)
        return self.get(review_id)

    def _policy(self, application_id: str) -> Policy:
        """The policy the application's decision was made under."""
        return self.replayer.policy(self.replayer.recorded(application_id)["policy_version"])

    @staticmethod
    def _chosen(policy: Policy, terms: dict[str, float]) -> dict[str, Any]:
        """The officer's terms, checked against the decision's policy."""
        try:
            return terms_by_person(policy, terms["credit_limit"], terms["annual_rate"])
        except TermsRefused as exc:
            raise InvalidInput(str(exc), fields={f"terms.{exc.field}": [str(exc)]}) from None

    def _approval(self, application_id: str, policy: Policy, answer: dict) -> dict[str, Any]:
        """Terms the decision's policy allows, from the recorded features and facts."""
        made = self.replayer.recorded(application_id)
        facts = recorded_facts(made, self.applications.spec.names)
        return policy.approval_by_person(facts, answer["decision"]["grade"])



