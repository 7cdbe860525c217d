"""Human review: requested by a channel for its applicant, resolved by a risk officer."""

from __future__ import annotations

from marshmallow import RAISE

from service.web.auth import current, requires
from service.web.errors import may_answer
from service.web.schemas import (
    ResolutionIn,
    ReviewListArgs,
    ReviewOut,
    ReviewPageOut,
    ReviewRequestIn,
    ReviewRequestOut,
)
from service.web.views import examples
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("reviews", __name__, description="Human review of automated decisions")


@blp.route("/v1/applications/<application_id>/review-requests", methods=["POST"])
@requires("reviews.request")
@blp.arguments(ReviewRequestIn(), example=examples.REVIEW_REQUEST)
@blp.response(201, ReviewRequestOut)
@may_answer(why={409: "Here: the application was deferred, so it has no decision to review: "
                      "a deferred application is retried (`POST /v1/applications/"
                      "{application_id}/retry`), not reviewed (`deferred`); its decision was "
                      "already made by a person; or a review of it is already open."})
def request_review(body: dict, application_id: str):
    """Ask for a person to review an automated decision, with the applicant's reason."""
    return wiring().reviews.request(current(), application_id, body["reason"])


@blp.route("/v1/reviews", methods=["GET"])
@requires("reviews.read")
@blp.arguments(ReviewListArgs(), location="query", unknown=RAISE)
@blp.response(200, ReviewPageOut)
def list_reviews(args: dict):
    """List review requests, oldest first, optionally by state."""
    return wiring().reviews.list(args.get("state"), args["limit"], args.get("cursor"))


@blp.route("/v1/reviews/<review_id>", methods=["GET"])
@requires("reviews.read")
@blp.response(200, ReviewOut)
def read_review(review_id: str):
    """Read a review with the decision, its explanation and the applicant's reason."""
    return wiring().reviews.get(review_id)


@blp.route("/v1/reviews/<review_id>/resolution", methods=["POST"])
@requires("reviews.resolve")
@blp.arguments(ResolutionIn(), examples=examples.RESOLUTION)
@blp.response(200, ReviewOut)
@may_answer(why={409: "Here: the review is already resolved, the outcome `overturned` "
                      "names a decision that is not a decline, or `amended` one that is not "
                      "an approval."})
def resolve_review(body: dict, review_id: str):
    """Resolve a review: uphold, overturn a decline, or amend an approval's terms."""
    return wiring().reviews.resolve(current(), review_id, body["outcome"], body["note"],
                                    body.get("terms"))
