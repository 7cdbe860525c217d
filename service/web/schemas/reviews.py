"""Human review: requests, resolutions and the review queue."""

from __future__ import annotations

from marshmallow import fields, validate

from service.web.schemas.applications import ApplicationOut, ExplanationOut
from service.web.schemas.common import (
    JsonNumber,
    Strict,
)


class ReviewRequestIn(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class TermsIn(Strict):
    credit_limit = JsonNumber(required=True, metadata={
        "description": "CNY: within the product's line range, in its steps (3,000 to 200,000 "
                       "in steps of 1,000 under policy 2026.11)"})
    annual_rate = JsonNumber(required=True, metadata={
        "description": "one of the policy's approving grades' rates (it names the grade); "
                       "never above the regulatory cap of 24%"})


class ResolutionIn(Strict):
    outcome = fields.String(required=True, validate=validate.OneOf(
        ["upheld", "overturned", "amended"]), metadata={
        "description": "`upheld` keeps the decision; `overturned` turns a decline into an "
                       "approval; `amended` changes an approval's line or rate"})
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    terms = fields.Nested(TermsIn, metadata={
        "description": "the officer's own terms: required to amend, optional to overturn "
                       "(without them the policy's usual terms apply), refused to uphold"})


class ReviewListArgs(Strict):
    state = fields.String(validate=validate.OneOf(["open", "resolved"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=[validate.Length(min=1, max=300),
                                     validate.Regexp(r"^[A-Za-z0-9_\-=]+$",
                                                     error="not a cursor")])


class ReviewRequestOut(Strict):
    """A review as the applicant's channel sees it: its state and the applicant-facing answer,
    never the explanation's features, contributions or model hash."""

    review_id = fields.String(required=True)
    application_id = fields.String(required=True)
    state = fields.String(required=True)
    reason = fields.String(required=True)
    outcome = fields.String(allow_none=True, required=True)
    created_at = fields.String(required=True)
    resolved_at = fields.String(allow_none=True, required=True)
    application = fields.Nested(ApplicationOut, required=True)


class ReviewOut(ReviewRequestOut):
    """A review as risk officers see it: also who resolved it, their note, the explanation."""

    note = fields.String(allow_none=True, required=True)
    resolved_by = fields.String(allow_none=True, required=True)
    explanation = fields.Nested(ExplanationOut, allow_none=True)


class ReviewPageOut(Strict):
    items = fields.List(fields.Nested(ReviewOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
