"""The decision flow: consent → gather → features → score → policy → explain → audit → answer.

A decision is issued only once it and its audit records are committed in one transaction;
if that fails, the client gets a 503 and no decision exists anywhere. If the COMMIT itself
failed, the decision may be durable all the same: the flow finds out by its application id
before answering (:mod:`service.persistence.commit_outcome`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from audit import (
    AuditStore,
    ChainWriter,
    CommitOutcomeUnknown,
    Entry,
    Pseudonymiser,
    prepare,
)
from datasources.consent import Consent
from datasources.gather import Gatherer
from datasources.identity import as_national_id
from scoring.governance.drift import DriftReference
from scoring.online.engine import Decisions
from scoring.online.features import features_for_application
from scoring.recourse import RecourseResult
from service.domain.encoding import ANSWER_HASH, answer_hash, dumps, now_text
from service.domain.errors import DecisionOutcomeUnknown, DecisionWithheld, InProgress
from service.domain.principal import Principal
from service.domain.timeline import Timeline
from service.ops.metrics import Metrics
from service.persistence.commit_outcome import OutcomeUnknown, committed_answer
from service.persistence.committer import GroupCommitter
from service.persistence.idempotency import Claim, ClaimLost, IdempotencyKeys, Replay, body_hash
from service.persistence.sealing import ApplicantSeal
from service.persistence.tables import applications
from service.usecases.answers import decision_answer
from service.usecases.attempts import Attempt, Superseded
from service.usecases.consents import ConsentBook, check_cited
from service.usecases.decision_records import DECISION_KIND, DecisionMade, decision_payload
from service.usecases.monitoring.cells import decision_cells
from service.usecases.monitoring.groups import groups_of
from service.usecases.shadows import shadow_outcomes
from service.usecases.strategies import LiveStrategy, StrategyBook

log = logging.getLogger("flashloan.flow")

# Statements on the hot path are built once; each execution only binds its values.
_INSERT_APPLICATION = applications.insert()


class DecisionFlow:
    """Everything one decision needs, wired once per worker."""

    def __init__(self, *, store: AuditStore, consents: ConsentBook, pseudonymiser: Pseudonymiser,
                 gatherer: Gatherer, strategies: StrategyBook, idempotency: IdempotencyKeys,
                 metrics: Metrics, committer: GroupCommitter, seal: ApplicantSeal) -> None:
        self.store = store
        # The champion, challenger and shadows in force, with their engines and recourse.
        self.strategies = strategies
        self.consents = consents
        self.pseudonymiser = pseudonymiser
        self.gatherer = gatherer
        self.idempotency = idempotency
        self.metrics = metrics
        self.committer = committer
        self.seal = seal

    # -- entry point ---------------------------------------------------------------------------

    def apply(self, principal: Principal, body: dict, idempotency_key: str | None
              ) -> tuple[int, str]:
        """Decide an application (or replay the answer to a repeated Idempotency-Key).

        Returns the status and the answer as JSON text: the very text stored with the
        decision, so it is encoded once.
        """
        if idempotency_key is None:
            return 201, self._decide(principal, body, None)
        claim = self.idempotency.claim(principal.key_id, idempotency_key, body_hash(body))
        if isinstance(claim, Replay):
            return claim.status, claim.response
        try:
            return 201, self._decide(principal, body, claim)
        finally:
            # Only once the decision is committed, or has failed: a duplicate waiting for the
            # key then finds its answer, or decides. Never raises.
            self.idempotency.release(claim)

    def decide_again(self, principal: Principal, body: dict, claim: Claim | None,
                     attempt: Attempt) -> str:
        """Decide a deferred application again (:mod:`service.usecases.retries`); return its
        answer."""
        return self._decide(principal, body, claim, attempt)

    @property
    def references(self) -> Mapping[str, DriftReference | None]:
        """Each live model's training distributions (its card's drift reference), by version:
        the roll-up counts decisions in their bins."""
        return self.strategies.current().references

    # -- the steps -----------------------------------------------------------------------------

    def _check_consent(self, principal: Principal, consent_id: str, subject: str,
                       scopes: tuple[str, ...]) -> Consent:
        """Return the consent the application cites, if the consent rule allows the
        application: this channel's, this applicant's, live, covering every required scope."""
        return check_cited(self.consents.cited(consent_id), channel=principal.name,
                           subject=subject, scopes=scopes, now=datetime.now(UTC))

    def _decide(self, principal: Principal, body: dict, claim: Claim | None,
                attempt: Attempt | None = None) -> str:
        tl = Timeline(attempt.earlier_steps if attempt is not None else ())
        applicant, request = body["applicant"], body["request"]
        # Parsed once, by the API's schema (a sealed applicant's is parsed here); the
        # gatherer and the sources take the parsed ID.
        nid = as_national_id(applicant["national_id"])
        age = nid.age_on(date.today())
        subject = self.pseudonymiser.national_id(nid.number)
        # The plan in force, and the strategy that decides this applicant under it.
        live = self.strategies.current()
        deciding = live.deciding(subject)
        engine = deciding.engine
        scopes = engine.policy.required_scopes
        tl.step("received")
        consent = self._check_consent(principal, body["consent_id"], subject, scopes)
        tl.step("consent_checked")
        gathered = self.gatherer.gather(nid, subject, consent.consent_id, scopes,
                                        channel=principal.name, consent=consent)
        tl.step("sources_gathered")
        decisions: Decisions | None = None
        features = None
        # A source that did not answer is unknown, not absent: with one income source
        # unknown the model trained without it decides; otherwise the application waits.
        unknown = gathered.unknown_scopes
        if gathered.sufficient and engine.model_for(unknown) is not None:
            features = features_for_application(gathered.records, request["amount"],
                                                request["term_months"], engine.model.spec)
            tl.step("features_built")
            decisions = engine.decide(features, age=age, purpose=request["purpose"],
                                      term_months=request["term_months"],
                                      unknown_scopes=unknown, on_step=tl.step)
        application_id = (attempt.application_id if attempt is not None
                          else f"a_{uuid.uuid4().hex}")
        facts = {"age": age, "amount": request["amount"], "term_months": request["term_months"],
                 "purpose": request["purpose"]}
        row = decisions.row(0) if decisions is not None else None
        recourse = self._recourse(deciding, decisions, request["amount"], tl)
        # The shadows decide the same facts aside: timed, recorded, never answered. Without
        # shadows nothing is timed aside, and the answer's steps add up to its elapsed_ms.
        shadows = shadow_outcomes(live.shadows, features, gathered, facts)
        if live.shadows:
            tl.aside("shadows_decided")
        answer = decision_answer(application_id, gathered, row, tl, request["amount"],
                                 recourse, deciding)
        if attempt is not None:
            attempt.continue_answer(answer)
        made = DecisionMade(
            principal=principal, application_id=application_id, subject=subject,
            applicant=applicant, consent=consent, facts=facts, gathered=gathered,
            decisions=decisions, row=row, answer=answer, spec=engine.model.spec,
            attempt=attempt, recourse=recourse, strategy=deciding.named(), shadows=shadows,
            groups=groups_of(nid, age), references=live.references)
        answer_text = self._record(made, tl, claim)
        self.metrics.decision(made.status, tl.durations, elapsed_ms=tl.elapsed_ms,
                              score=row["score"] if row is not None else None,
                              pd=row["pd"] if row is not None else None,
                              model_version=row["model_version"] if row is not None else None)
        for scope in made.opened_breakers:
            self.metrics.breaker_opened(scope)
        return answer_text

    def _recourse(self, deciding: LiveStrategy, decisions: Decisions | None, amount: float,
                  tl: Timeline) -> RecourseResult | None:
        """What would lead to approval of a model's decline or partial approval.

        Sought for every scored decision (it finds nothing to do for a deferral or a full
        approval). A failure of the search costs the suggestions, never the decision: it is
        logged, and the record says none was sought.
        """
        if decisions is None or deciding.recourse is None:
            return None
        try:
            found = deciding.recourse.suggest(decisions, 0, amount=float(amount))
        except Exception:
            log.exception("recourse search failed; the decision stands without suggestions")
            return None
        finally:
            tl.step("recourse_sought")
        return found

    def _record(self, made: DecisionMade, tl: Timeline, claim: Claim | None) -> str:
        """Write the application and its one audit record in one transaction, or issue nothing.

        The answer is encoded once (the text stored and sent) and the record once (its
        canonical form, which fixes the answer by its hash); both before the chain lock, so
        that only the write and its commit, shared with concurrent decisions, follow. A retry
        (``made.attempt``) updates the application's row. Returns the answer's JSON text.
        """
        application_id, answer, attempt = made.application_id, made.answer, made.attempt
        try:
            payload = decision_payload(made)
        except ValueError as exc:
            raise self._withheld("the audit record could not be built", application_id,
                                 exc) from exc
        application = self._application_row(made, payload)
        tl.step("audited")
        payload["decided_ms"] = answer["elapsed_ms"] = tl.decided_ms
        answer_text = application["answer"] = dumps(answer)
        payload[ANSWER_HASH] = answer_hash(answer_text)
        try:
            prepared = prepare(Entry(DECISION_KIND, payload, application_id,
                                     made.principal.actor))
        except ValueError as exc:
            raise self._withheld("the audit record could not be built", application_id,
                                 exc) from exc
        cells = decision_cells(payload, groups=made.groups, durations_ms=tl.durations,
                               opened_breakers=made.opened_breakers,
                               references=made.references)

        def write(writer: ChainWriter) -> None:
            conn = writer.connection
            (record,) = writer.append_many([prepared])
            application["decision_seq"] = record.seq
            if attempt is None:
                conn.execute(_INSERT_APPLICATION, application)
            else:
                attempt.update_row(conn, application)
            if claim is not None:
                self.idempotency.complete(conn, claim, application_id,
                                          201 if attempt is None else 200, answer_text)

        try:
            # Committed together with the decisions of concurrent requests (group commit);
            # this returns only once this decision and its record are durable.
            self.committer.submit(write, cells)
        except CommitOutcomeUnknown as exc:
            return self._settle(application_id, exc,
                                answer_text if attempt is not None else None)
        except Superseded:
            raise
        except ClaimLost as exc:
            log.warning("another request's row holds the Idempotency-Key; decision withheld",
                        extra={"application_id": application_id})
            raise InProgress("another request with this Idempotency-Key was recorded or is "
                             "in progress, so this decision was not recorded; retry with the "
                             "same key for the answer") from exc
        except Exception as exc:
            raise self._withheld("audit write failed", application_id, exc) from exc
        return answer_text

    def _application_row(self, made: DecisionMade, payload: Mapping[str, Any]
                         ) -> dict[str, Any]:
        """The application's row as the decision leaves it (its answer and record's seq are
        added as they are written)."""
        status = made.status
        principal = made.principal
        return {
            "application_id": made.application_id, "channel": principal.name,
            "key_id": principal.key_id, "subject": made.subject,
            "consent_id": made.consent.consent_id, "status": status, "outcome": status,
            "grade": (payload["decision"]["grade"]
                      if "decision" in payload and status != "deferred" else None),
            "model_version": payload.get("model_version"), "decided_by": "model",
            "created_at": made.answer["created_at"], "updated_at": now_text(),
            # Kept only while the application waits for a retry; a decision erases it.
            "sealed_applicant": (self.seal.seal(made.application_id, made.applicant)
                                 if status == "deferred" else None)}

    def _settle(self, application_id: str, exc: CommitOutcomeUnknown,
                retried: str | None = None) -> str:
        """Answer a decision whose commit raised: stored if committed, else a 503.

        A retry's application was stored before it: its decision was committed only if the
        row holds its answer, ``retried``.
        """
        try:
            stored = committed_answer(self.store.engine, application_id)
        except OutcomeUnknown as unknown:
            log.error("audit commit failed and its outcome is unknown",
                      extra={"application_id": application_id,
                             "error_type": type(exc.__cause__ or exc).__name__})
            self.metrics.audit_failure()
            raise DecisionOutcomeUnknown(
                f"the outcome of application {application_id} is unknown: the decision "
                "may or may not have been recorded. A retry with the same Idempotency-Key "
                "returns the decision if one was made (so does GET /v1/applications/"
                f"{application_id} once the service can read it)") from unknown
        if stored is None or (retried is not None and stored != retried):
            raise self._withheld("audit commit failed", application_id, exc) from exc
        log.warning("audit commit raised, but the decision was committed; answering it",
                    extra={"application_id": application_id,
                           "error_type": type(exc.__cause__ or exc).__name__})
        return stored

    def _withheld(self, what: str, application_id: str, exc: Exception) -> DecisionWithheld:
        """Log and count a decision that could not be recorded; return the error to raise."""
        log.error(f"{what}; decision withheld",
                  extra={"application_id": application_id, "error_type": type(exc).__name__})
        self.metrics.audit_failure()
        return DecisionWithheld("the decision could not be recorded, so none was issued; "
                                "retry later")
