"""Loan outcomes, posted by the bank's servicing system, and realised default against the PD
predicted at decision.

A loan is an approved application. The servicing system posts whether it was drawn (when, and
how much of the credit line) and how it performed month by month; a month posted again
replaces the one before (a correction). Each post is one ``outcome.recorded`` audit record,
written in the transaction that stores it, so a post that is refused writes nothing.

What servicing can learn: whether an id is an approved application (one 404 answers an id
unknown, declined or deferred alike, so nothing of any other decision), and, by posting
refused bodies, the loan's credit line to the fen, the time of its approval to the
microsecond and so its month. A post is checked against them to keep mistaken drawings out of
the calibration; servicing is the system that disbursed the loan against that line after
that approval, so it knows both already. It never learns a grade, a PD or a reason.

The calibration sets, for drawn loans, the share that defaulted beside the mean PD their
decisions predicted, by grade and by month of approval; the database aggregates it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, true, update

from audit import AuditStore
from audit.schema import audit_records
from service.domain.encoding import loads, now_text
from service.domain.errors import InvalidInput, NotFound, OutcomeConflict
from service.domain.principal import Principal
from service.persistence.tables import applications, loan_performance, loans, reviews

OUTCOME_KIND = "outcome.recorded"
STATUSES = ("current", "past_due", "default", "repaid")
# A loan is a default once any month is `default`, or `past_due` by this many days or more.
DEFAULT_DAYS_PAST_DUE = 90
DEFAULT_RULE = (f"a loan is a default once any month is `default`, or `past_due` with "
                f"days_past_due of {DEFAULT_DAYS_PAST_DUE} or more")
# How far ahead of the service's clock a drawing may be dated (the two clocks differ a little).
CLOCK_SKEW = timedelta(minutes=5)


def is_default(status: str, days_past_due: int) -> bool:
    """Whether a month makes its loan a default."""
    return status == "default" or (status == "past_due"
                                   and days_past_due >= DEFAULT_DAYS_PAST_DUE)


def days_problem(status: str, days_past_due: int) -> str | None:
    """What is wrong with a month's days past due for its status, or None."""
    if status in ("current", "repaid") and days_past_due != 0:
        return f"must be 0 when status is {status}; got {days_past_due}"
    if status == "past_due" and days_past_due < 1:
        return f"must be at least 1 when status is past_due; got {days_past_due}"
    return None


# The default rule in SQL: the months that make their loan a default.
_DEFAULTING = or_(loan_performance.c.status == "default",
                  and_(loan_performance.c.status == "past_due",
                       loan_performance.c.days_past_due >= DEFAULT_DAYS_PAST_DUE))


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OutcomeBook:
    """Loans and their performance: recorded with their audit record, read back, aggregated."""

    def __init__(self, store: AuditStore, clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = store
        self.clock = clock

    def record(self, principal: Principal, application_id: str, *, drawn: bool,
               drawn_at: datetime | None, amount: float | None,
               performance: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """Store what the servicing system reports of an approved application's loan and
        return its whole history.

        ``performance`` holds months (``month``, ``status``, ``days_past_due``) that the
        request schema has checked one by one; here they are checked against the loan.
        """
        months = list(performance)
        now = self.clock()
        with self.store.writer() as writer:
            conn = writer.connection
            app = conn.execute(select(applications).where(
                applications.c.application_id == application_id)).first()
            if app is None or app.status != "approved":
                # One answer for an id unknown, declined or deferred: servicing may learn
                # which of its ids are approved loans, never whether or how others were decided.
                raise NotFound("no such approved application")
            decision = loads(app.answer).get("decision") or {}
            approved_at = _approved_at(conn, app)
            problems = _problems(decision, approved_at, now, drawn_at, amount, months)
            if problems:
                raise InvalidInput(f"invalid input: {', '.join(problems)}", fields=problems)
            known = {row.month: row for row in conn.execute(select(loan_performance).where(
                loan_performance.c.application_id == application_id))}
            if not drawn and known:
                raise OutcomeConflict(
                    f"the loan has performance recorded for {', '.join(sorted(known))}, so it "
                    "was drawn: it cannot be reported as not drawn",
                    fields={"drawn": ["must be true: the loan has performance recorded"]})
            stamp = now_text(now)
            values = {"subject": app.subject, "drawn": drawn,
                      "drawn_at": now_text(drawn_at) if drawn_at is not None else None,
                      "amount": amount, "credit_limit": decision["credit_limit"],
                      "grade": decision.get("grade") or app.grade, "pd": decision.get("pd"),
                      "approved_at": approved_at, "approved_month": approved_at[:7],
                      "updated_at": stamp}
            if conn.execute(select(loans.c.application_id).where(
                    loans.c.application_id == application_id)).first() is None:
                conn.execute(insert(loans).values(application_id=application_id,
                                                  recorded_at=stamp, **values))
            else:
                conn.execute(update(loans).where(
                    loans.c.application_id == application_id).values(**values))
            for entry in months:
                row = {"status": entry["status"], "days_past_due": entry["days_past_due"],
                       "recorded_at": stamp}
                if entry["month"] in known:
                    conn.execute(update(loan_performance).where(
                        loan_performance.c.application_id == application_id,
                        loan_performance.c.month == entry["month"]).values(**row))
                else:
                    conn.execute(insert(loan_performance).values(
                        application_id=application_id, month=entry["month"], **row))
            writer.append(OUTCOME_KIND, {
                "application_id": application_id, "subject": app.subject, "drawn": drawn,
                "drawn_at": values["drawn_at"], "amount": amount,
                "months": [{"month": e["month"], "status": e["status"],
                            "days_past_due": e["days_past_due"]} for e in months],
                "corrected": sorted(e["month"] for e in months if e["month"] in known),
                # The time the rows were stamped with, by the book's clock.
                "posted_at": stamp},
                application_id=application_id, actor=principal.actor)
        return self.history(application_id)

    def history(self, application_id: str) -> dict[str, Any]:
        """Return what was posted of a loan, every month oldest first, and whether it
        defaulted: nothing of its decision."""
        with self.store.engine.connect() as conn:
            loan = conn.execute(select(loans).where(
                loans.c.application_id == application_id)).one()
            months = conn.execute(select(loan_performance).where(
                loan_performance.c.application_id == application_id)
                .order_by(loan_performance.c.month)).all()
        default_month = next((m.month for m in months
                              if is_default(m.status, m.days_past_due)), None)
        return {"application_id": loan.application_id, "drawn": loan.drawn,
                "drawn_at": loan.drawn_at, "amount": loan.amount,
                "defaulted": default_month is not None, "default_month": default_month,
                "performance": [{"month": m.month, "status": m.status,
                                 "days_past_due": m.days_past_due,
                                 "recorded_at": m.recorded_at} for m in months],
                "recorded_at": loan.recorded_at, "updated_at": loan.updated_at}

    def calibration(self) -> dict[str, Any]:
        """Realised default against the predicted PD of drawn loans: by grade, by month of
        approval, and overall."""
        defaulted = (select(loan_performance.c.application_id).where(_DEFAULTING)
                     .group_by(loan_performance.c.application_id).subquery("defaulted"))
        cells = (select(loans.c.grade, loans.c.approved_month,
                        func.count().label("loans"),
                        func.count(defaulted.c.application_id).label("defaults"),
                        func.count(loans.c.pd).label("predicted"),
                        func.sum(loans.c.pd).label("pd_total"))
                 .select_from(loans.outerjoin(
                     defaulted, defaulted.c.application_id == loans.c.application_id))
                 .where(loans.c.drawn == true())
                 .group_by(loans.c.grade, loans.c.approved_month))
        with self.store.engine.connect() as conn:
            rows = conn.execute(cells).all()
        by_grade: dict[str, list[Any]] = defaultdict(list)
        by_month: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_grade[row.grade].append(row)
            by_month[row.approved_month].append(row)
        return {"default_rule": DEFAULT_RULE, "as_of": now_text(self.clock()),
                "by_grade": [{"grade": g, **_rates(by_grade[g])} for g in sorted(by_grade)],
                "by_month": [{"month": m, **_rates(by_month[m])} for m in sorted(by_month)],
                "overall": _rates(rows)}


def _rates(cells: Sequence[Any]) -> dict[str, Any]:
    """Loans, defaults, realised rate, mean predicted PD and their ratio, over ``cells``."""
    count = sum(int(c.loans) for c in cells)
    defaults = sum(int(c.defaults) for c in cells)
    predicted = sum(int(c.predicted) for c in cells)
    pd_total = sum(float(c.pd_total or 0.0) for c in cells)
    rate = defaults / count if count else None
    mean_pd = pd_total / predicted if predicted else None
    return {"loans": count, "defaults": defaults, "default_rate": rate, "mean_pd": mean_pd,
            "ratio": rate / mean_pd if rate is not None and mean_pd else None}


def _approved_at(conn: Connection, app: Any) -> str:
    """When the application was approved: the review that overturned its decline, else its
    latest decision record."""
    if app.decided_by == "person":
        overturned = conn.execute(select(func.max(reviews.c.resolved_at)).where(
            reviews.c.application_id == app.application_id,
            reviews.c.outcome == "overturned")).scalar()
        if overturned is not None:
            return str(overturned)
    if app.decision_seq is not None:
        decided = conn.execute(select(audit_records.c.recorded_at).where(
            audit_records.c.seq == app.decision_seq)).scalar()
        if decided is not None:
            return str(decided)
    return str(app.created_at)


def _problems(decision: dict[str, Any], approved_at: str, now: datetime,
              drawn_at: datetime | None, amount: float | None,
              months: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What the loan's own terms and dates refuse of a post, by field.

    The messages do not state the line or the approval's time, but whether a post is refused
    tells them (see the module's docstring): servicing disbursed against them and knows them.
    """
    problems: dict[str, list[str]] = {}
    limit = float(decision["credit_limit"])
    if amount is not None and amount > limit:
        problems["amount"] = [f"must not exceed the credit line granted; got {amount:,.2f}"]
    drawn_text = now_text(drawn_at) if drawn_at is not None else None
    if drawn_text is not None and drawn_text < approved_at:
        problems["drawn_at"] = [f"must not be before the approval; got {drawn_text}"]
    elif drawn_at is not None and drawn_at > now + CLOCK_SKEW:
        problems["drawn_at"] = [f"must not be in the future; got {drawn_text}"]
    first = max(approved_at[:7], drawn_text[:7] if drawn_text else "")
    current = now_text(now)[:7]
    for index, entry in enumerate(months):
        month = entry["month"]
        if month < first:
            since = ("the month of approval" if first == approved_at[:7]
                     else f"the month the loan was drawn, {first}")
            problems[f"performance.{index}.month"] = [
                f"must not be before {since}; got {month}"]
        elif month > current:
            problems[f"performance.{index}.month"] = [
                f"must not be after the current month, {current}: its performance cannot be "
                f"known yet; got {month}"]
    return problems
