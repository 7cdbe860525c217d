"""Applications: decide, read the status, the explanation (JSON and SVG) and the notice."""

from __future__ import annotations

import re

from flask import Response, request
from marshmallow import RAISE, fields, validate

from service.usecases.applications import ApplicationBook
from service.usecases.notice import build_notice
from service.web.auth import current, requires
from service.web.charts import UNITS, waterfall_svg
from service.web.errors import ApiError, may_answer
from service.web.schemas import ApplicationIn, ApplicationOut, ExplanationOut, NoticeOut, RetryIn
from service.web.schemas.common import Strict
from service.web.views import examples
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("applications", __name__, url_prefix="/v1/applications",
                description="Credit applications and their decisions")

class ChartArgs(Strict):
    units = fields.String(load_default="points", validate=validate.OneOf(UNITS), metadata={
        "description": "score points (the deciding model's scaling; higher is better) or the "
                       "model's log-odds of default"})


_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": False,
                      "description": "Retries with the same key and body return the first "
                                     "answer; another body is a 409. A retry while the first "
                                     "request is deciding waits for its answer (409 "
                                     "in_progress if too long); a key left by a request that "
                                     "died expires and the next retry decides. Keys are kept "
                                     "24 hours by default.",
                      "schema": {"type": "string", "minLength": 1, "maxLength": 128,
                                 "pattern": "^[\\x21-\\x7e]+$"}}
NOT_SCORED = ("Also for an application deferred before it was scored, which has no explanation "
              "(`not_scored`), and for one whose decision record was purged under the "
              "retention policy, its explanation with it (`purged`).")


@blp.route("", methods=["POST"])
@requires("applications.submit")
@blp.arguments(ApplicationIn(), example=examples.APPLICATION)
@blp.response(201, ApplicationOut)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@may_answer(why={
    409: "Here: the Idempotency-Key was used with another body, or the request that first "
         "used it is still deciding (`in_progress`): retry later with the same key.",
    422: "Here also: the consent is not one of this channel's, belongs to another applicant, "
         "is not live (`consent_invalid`) or does not cover the sources the policy needs "
         "(`consent_insufficient`); or the Idempotency-Key is not 1 to 128 visible ASCII "
         "characters.",
    503: "Here also: the decision could not be recorded, so none was issued "
         "(`audit_unavailable`); or whether it was recorded is unknown (`outcome_unknown`): "
         "a retry with the same Idempotency-Key returns it if it was.",
})
def apply(body: dict):
    """Decide an application: approved, declined or deferred, with reasons and a timeline."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.match(key):
        raise ApiError(422, "Idempotency-Key must be 1 to 128 visible ASCII characters",
                       fields={"Idempotency-Key": ["must be 1 to 128 visible ASCII characters"]})
    status, answer = wiring().flow.apply(current(), body, key)
    # The flow builds the answer in ApplicationOut's very shape (tests hold it to that, value
    # types included) and returns the JSON text it stored, so it is sent as is rather than
    # dumped through the schema and encoded again.
    return Response(answer, status, mimetype="application/json")


@blp.route("/<application_id>/retry", methods=["POST"])
@requires("applications.submit")
@blp.arguments(RetryIn(), example={"applicant": examples.APPLICATION["applicant"]})
@blp.response(200, ApplicationOut, description=(
    "The application's answer: the new decision of a deferred application, recorded against "
    "it (its `attempts` and `timeline` show every attempt); or, for an application that is "
    "no longer deferred, its current answer, unchanged."))
@blp.doc(parameters=[IDEMPOTENCY_HEADER], description=(
    "Gathers the sources again under the consent the application cites, which must still "
    "be live, and decides. The channel sends the applicant again, as in the application "
    "(`national_id`, `name`, `mobile`): the national ID must be the one the application was "
    "made with. The request (amount, term, purpose) and the consent are the application's. "
    "A channel retries its own applications only. The scheduler (`flashloan applications "
    "retry-deferred`) runs the same retry with the applicant kept encrypted while the "
    "application is deferred; applications deferred before applicants were kept are left "
    "to their channel."))
@may_answer(why={
    409: "Here: the Idempotency-Key was used with another body, or the request that first "
         "used it is still deciding (`in_progress`); or the application's decision record "
         "was purged, so it cannot be decided again (`not_retryable`).",
    422: "Here also: the national ID is not the application's applicant's "
         "(`applicant_mismatch`); the consent the application cites is withdrawn, expired or "
         "not yet in force (`consent_invalid`, naming its state) or no longer covers the "
         "sources the policy needs (`consent_insufficient`).",
    503: "Here also: the decision could not be recorded, so none was issued "
         "(`audit_unavailable`); or whether it was recorded is unknown (`outcome_unknown`): "
         "a retry with the same Idempotency-Key returns it if it was.",
})
def retry(body: dict, application_id: str):
    """Decide a deferred application again, once its sources can answer."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.match(key):
        raise ApiError(422, "Idempotency-Key must be 1 to 128 visible ASCII characters",
                       fields={"Idempotency-Key": ["must be 1 to 128 visible ASCII characters"]})
    answer = wiring().retries.retry(current(), application_id, body["applicant"], key)
    return Response(answer, 200, mimetype="application/json")


@blp.route("/<application_id>", methods=["GET"])
@requires("applications.read")
@blp.response(200, ApplicationOut)
def read_application(application_id: str):
    """Read an application's status, decision and timeline."""
    return ApplicationBook.status(wiring().applications.visible(current(), application_id))


@blp.route("/<application_id>/explanation", methods=["GET"])
@requires("applications.explanation")
@blp.response(200, ExplanationOut)
@may_answer(why={404: NOT_SCORED})
def explanation(application_id: str):
    """Read the full explanation recorded at decision time (TreeSHAP contributions)."""
    book = wiring().applications
    return book.explanation(book.visible(current(), application_id))


@blp.route("/<application_id>/explanation.svg", methods=["GET"])
@requires("applications.explanation")
@blp.arguments(ChartArgs(), location="query", unknown=RAISE)
@blp.response(200, {"type": "string"}, content_type="image/svg+xml")
@may_answer(why={404: NOT_SCORED})
def explanation_svg(args: dict, application_id: str):
    """Draw the explanation as a waterfall from the base value to the final score."""
    book = wiring().applications
    data = book.explanation(book.visible(current(), application_id))
    units = args["units"]
    svg = waterfall_svg(data, wiring().engine.model.spec, units=units,
                        scale=wiring().scales.of(data))
    return Response(svg, mimetype="image/svg+xml")


@blp.route("/<application_id>/notice", methods=["GET"])
@requires("applications.notice")
@blp.response(200, NoticeOut)
def notice(application_id: str):
    """Read the applicant's notice: outcome, reasons in plain words, what they can do."""
    book = wiring().applications
    row = book.visible(current(), application_id)
    answer = ApplicationBook.status(row)
    explanation_data = book.explanation_or_none(row)
    return build_notice(application_id, answer, explanation_data, wiring().engine.model.spec,
                        row.updated_at, wiring().consents.cited(row.consent_id))
