"""Loan outcomes posted by the bank's servicing system, and realised default against the PD
predicted at decision."""

from __future__ import annotations

from service.usecases.outcomes import DEFAULT_RULE
from service.web.auth import current, requires
from service.web.errors import may_answer
from service.web.schemas import CalibrationOut, OutcomeIn, OutcomeOut
from service.web.views import examples
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("outcomes", __name__,
                description="Loan outcomes and realised default against predicted PD")


@blp.route("/v1/outcomes", methods=["POST"])
@requires("outcomes.report",
          note="A month posted again replaces the one recorded before (a correction). Each "
               "post is one `outcome.recorded` audit record.")
@blp.arguments(OutcomeIn(), examples=examples.OUTCOME)
@blp.response(200, OutcomeOut)
@may_answer(why={404: "Here: `no such approved application` (`not_found`), one answer "
                      "whether no application has the `application_id` of the body or it "
                      "was declined or deferred, so nothing of another decision is told.",
                 409: "Here: the loan is reported as not drawn although months of its "
                      "performance are recorded (`conflict`).",
                 422: "Here also: the amount is less than 0.01, not in whole fen or more "
                      "than the credit line granted, the drawing is dated before the "
                      "approval, or a month is before the month of approval or after the "
                      "current one. The messages do not state the line or the approval's "
                      "time, but which posts are refused tells them: the servicing system "
                      "disbursed the loan against that line after that approval."})
def post_outcome(body: dict):
    """Record whether an approved loan was drawn and how it performed, month by month."""
    return wiring().outcomes.record(
        current(), body["application_id"], drawn=body["drawn"], drawn_at=body.get("drawn_at"),
        amount=body.get("amount"), performance=body["performance"])


@blp.route("/v1/monitoring/calibration", methods=["GET"])
@requires("monitoring.read", note=f"For drawn loans: {DEFAULT_RULE}.")
@blp.response(200, CalibrationOut)
def calibration():
    """Set realised default beside predicted PD, by grade and by month of approval."""
    return wiring().outcomes.calibration()
