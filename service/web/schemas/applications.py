"""Applications and what is read back of them: answers, explanations, notices."""

from __future__ import annotations

from marshmallow import fields, validate

from scoring.online.policy import PURPOSES
from service.web.schemas.common import (
    MOBILE_SHAPE,
    NationalIdField,
    OfferedTerm,
    RequestedAmount,
    Strict,
)


class ApplicantIn(Strict):
    national_id = NationalIdField(required=True)
    # No text may hold a NUL (the body parser refuses one in any field); said here too, so
    # that the document states it of the one free text of an application.
    name = fields.String(required=True, validate=[
        validate.Length(min=1, max=50),
        validate.Regexp(r"^[^\x00]*$", error="must not hold a NUL character")])
    mobile = fields.String(required=True, validate=MOBILE_SHAPE)


class LoanRequestIn(Strict):
    # The bounds are the policy's: checked, and documented, for the policy in force.
    amount = RequestedAmount(required=True, metadata={
        "description": "CNY, a JSON number within the product's credit-line range"})
    term_months = OfferedTerm(required=True, metadata={
        "description": "months, one of the terms the product offers"})
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))


class ApplicationIn(Strict):
    applicant = fields.Nested(ApplicantIn, required=True)
    request = fields.Nested(LoanRequestIn, required=True)
    consent_id = fields.String(required=True, validate=validate.Length(min=1, max=40))


class ReasonOut(Strict):
    code = fields.String(required=True)
    text_zh = fields.String(required=True)
    text_en = fields.String(required=True)


class PartialOut(Strict):
    requested_amount = fields.Float(required=True)
    credit_limit = fields.Float(required=True)
    bound = fields.String(required=True, validate=validate.OneOf(
        ["income_multiple", "debt_service", "product_max"]), metadata={
        "description": "what set the line: the verified income times the grade's multiple, "
                       "the debt-service bound, or the product's largest line"})
    code = fields.String(required=True)
    text_zh = fields.String(required=True)
    text_en = fields.String(required=True)


class TextPairOut(Strict):
    text_zh = fields.String(required=True)
    text_en = fields.String(required=True)


class SuggestionTextOut(TextPairOut):
    steps = fields.List(fields.Nested(TextPairOut), required=True, metadata={
        "description": "each change of the suggestion, in plain words"})


class RecourseOut(Strict):
    """What would lead to approval, as the applicant is told it: texts only."""

    status = fields.String(required=True, validate=validate.OneOf(
        ["offered", "none_possible", "not_found", "not_needed"]), metadata={
        "description": "`offered`: suggestions follow; `none_possible`: the decision rests on "
                       "evidence the applicant cannot change now; `not_found`: no change "
                       "within reach was found"})
    target = fields.String(allow_none=True, required=True, validate=validate.OneOf(
        ["approval", "requested_amount"]))
    suggestions = fields.List(fields.Nested(SuggestionTextOut), required=True, metadata={
        "description": "up to three smallest sets of changes, each checked by deciding the "
                       "changed application again"})
    note_zh = fields.String(allow_none=True, required=True)
    note_en = fields.String(allow_none=True, required=True)


class DecisionOut(Strict):
    credit_limit = fields.Float(required=True)
    annual_rate = fields.Float(allow_none=True, required=True)
    terms_months = fields.List(fields.Integer(), required=True)
    score = fields.Integer(required=True)
    grade = fields.String(required=True)
    pd = fields.Float(required=True)
    reasons = fields.List(fields.Nested(ReasonOut), required=True)
    model_version = fields.String(required=True)
    policy_version = fields.String(required=True)
    # Answers given before these were kept lack them.
    requested_amount = fields.Float(metadata={"description": "CNY, the amount asked for"})
    # Named "partial" in the answer; not as an attribute, which a Schema keeps for itself.
    partial_approval = fields.Nested(PartialOut, allow_none=True, data_key="partial",
                                     attribute="partial", metadata={
        "description": "set when the line granted is below the amount asked for, with the "
                       "bound that set it"})
    recourse = fields.Nested(RecourseOut, allow_none=True, metadata={
        "description": "for a decline or a partial approval decided by the model: what "
                       "would lead to approval (or to the amount asked for)"})


class StepOut(Strict):
    step = fields.String(required=True)
    at = fields.String(required=True)
    ms = fields.Float(required=True)


class ReviewRefOut(Strict):
    review_id = fields.String(required=True)
    state = fields.String(required=True)
    outcome = fields.String(allow_none=True, required=True)


class AttemptOut(Strict):
    attempt = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["approved", "declined", "deferred"]))
    missing_sources = fields.List(fields.String(), required=True)
    decided_at = fields.String(required=True)


class ApplicationOut(Strict):
    application_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["approved", "declined", "deferred"]))
    decision = fields.Nested(DecisionOut, allow_none=True, required=True)
    decided_by = fields.String(required=True, validate=validate.OneOf(["model", "person"]))
    strategy = fields.String(metadata={
        "description": "the strategy (MODEL/POLICY) that decided: the champion, or the "
                       "challenger that decides a share of applications; absent from answers "
                       "given before strategies were recorded"})
    missing_sources = fields.List(fields.String(), required=True)
    timeline = fields.List(fields.Nested(StepOut), required=True, metadata={
        "description": "the steps of every attempt, oldest first; a retry's steps follow a "
                       "`retried` step"})
    elapsed_ms = fields.Float(required=True, metadata={
        "description": "the time the latest attempt took"})
    created_at = fields.String(required=True)
    review = fields.Nested(ReviewRefOut, allow_none=True)
    attempts = fields.List(fields.Nested(AttemptOut), metadata={
        "description": "once a deferred application was decided again: each attempt, oldest "
                       "first, with its outcome"})


class RetryIn(Strict):
    applicant = fields.Nested(ApplicantIn, required=True, metadata={
        "description": "the applicant, as in the application: the service keeps only a keyed "
                       "digest of the national ID, which this must match"})


class FeatureOut(Strict):
    name = fields.String(required=True)
    group = fields.String(required=True)
    value = fields.Float(allow_none=True, required=True)
    contribution = fields.Float(required=True)


class FullReasonOut(ReasonOut):
    group = fields.String(required=True)
    source = fields.String(required=True)
    feature = fields.String(allow_none=True, required=True)
    contribution = fields.Float(allow_none=True, required=True)
    reference_contribution = fields.Float(allow_none=True, metadata={
        "description": "the contribution the reason was ranked by: against the model's "
                       "reference of approved applicants (interventional TreeSHAP)"})


class ChangeOut(Strict):
    lever = fields.String(required=True)
    feature = fields.String(metadata={"description": "the model feature the lever moves"})
    fact = fields.String(metadata={"description": "the application fact the lever moves"})
    from_ = fields.Raw(required=True, data_key="from", attribute="from")
    to = fields.Raw(required=True)
    text_zh = fields.String(required=True)
    text_en = fields.String(required=True)


class MovedOut(Strict):
    from_ = fields.Float(required=True, data_key="from", attribute="from")
    to = fields.Float(required=True)


class VerifiedOut(Strict):
    outcome = fields.String(required=True)
    credit_limit = fields.Float(required=True)
    annual_rate = fields.Float(allow_none=True, required=True)
    grade = fields.String(required=True)
    score = fields.Integer(required=True)


class FullSuggestionOut(TextPairOut):
    changes = fields.List(fields.Nested(ChangeOut), required=True)
    features = fields.Dict(keys=fields.String(), values=fields.Nested(MovedOut), required=True,
                           metadata={"description": "every model feature the changes move, "
                                                    "joint effects included"})
    result = fields.Nested(VerifiedOut, required=True, metadata={
        "description": "what the engine decided on the changed application"})


class BlockingRuleOut(Strict):
    rule = fields.String(required=True)
    code = fields.String(required=True)


class FullRecourseOut(Strict):
    """What would lead to approval, as the record holds it: the changes and their checks."""

    status = fields.String(required=True)
    target = fields.String(allow_none=True, required=True)
    suggestions = fields.List(fields.Nested(FullSuggestionOut), required=True)
    note_zh = fields.String(allow_none=True, required=True)
    note_en = fields.String(allow_none=True, required=True)
    blocking_rules = fields.List(fields.Nested(BlockingRuleOut), required=True)


class ReferenceOut(Strict):
    sha256 = fields.String(required=True)
    mean_margin = fields.Float(required=True)


class ExplanationOut(Strict):
    application_id = fields.String(required=True)
    model_version = fields.String(required=True)
    model_sha256 = fields.String(required=True)
    policy_version = fields.String(required=True)
    outcome = fields.String(required=True)
    base_value = fields.Float(required=True)
    margin = fields.Float(required=True)
    pd = fields.Float(required=True)
    score = fields.Integer(required=True)
    grade = fields.String(required=True)
    rules_fired = fields.List(fields.String(), required=True)
    # Explanations recorded before decisions on partial data carry none of these: every
    # source answered then, so each reads as empty.
    unknown_sources = fields.List(fields.String(), required=True, dump_default=list, metadata={
        "description": "the sources that did not answer (timeout, error, malformed answer, "
                       "open breaker): what they would have said is unknown"})
    unknown_features = fields.List(fields.String(), required=True, dump_default=list, metadata={
        "description": "the features those sources leave unknown; the model that decided "
                       "does not read them"})
    partial_features = fields.List(fields.String(), required=True, dump_default=list, metadata={
        "description": "cross-source features computed from the sources that did answer"})
    undetermined_rules = fields.List(fields.String(), required=True, dump_default=list,
                                     metadata={"description": "policy rules that the unknown "
                                               "sources leave undetermined"})
    features = fields.List(fields.Nested(FeatureOut), required=True)
    reasons = fields.List(fields.Nested(FullReasonOut), required=True)
    reasons_method = fields.String(metadata={
        "description": "how the reasons were ranked: `reference:interventional` (against the "
                       "model's reference of approved applicants) or `average:path_dependent` "
                       "(against the average applicant, as decisions of earlier releases "
                       "were)"})
    reference = fields.Nested(ReferenceOut, allow_none=True, metadata={
        "description": "the model's reference: its digest and mean margin, which the "
                       "reference contributions add up to with the margin"})
    reference_contributions = fields.Dict(keys=fields.String(), values=fields.Float(),
                                          allow_none=True)
    recourse = fields.Nested(FullRecourseOut, allow_none=True, metadata={
        "description": "what would lead to approval (or to the amount asked for), as found "
                       "at decision time"})


class TextOut(Strict):
    zh = fields.String(required=True)
    en = fields.String(required=True)


class NoticeOut(Strict):
    application_id = fields.String(required=True)
    status = fields.String(required=True)
    decided_by = fields.String(required=True)
    summary = fields.Nested(TextOut, required=True)
    reasons = fields.List(fields.Nested(ReasonOut), required=True)
    what_you_can_do = fields.List(fields.Nested(TextOut), required=True)
    right_to_review = fields.Nested(TextOut, required=True)
    decided_at = fields.String(required=True)


class ReasonEntryOut(Strict):
    code = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(
        ["adverse", "favourable", "rule", "line", "review"]), metadata={
        "description": "`adverse`: a feature counted against the applicant (declines); "
                       "`favourable`: a feature counted for them (approvals); `rule`: a "
                       "policy rule; `line`: what set a partial approval's line; `review`: "
                       "a risk officer's change on review"})
    text_zh = fields.String(required=True)
    text_en = fields.String(required=True)
    group = fields.String(allow_none=True, required=True)
    feature = fields.String(allow_none=True, required=True)
    rule = fields.String(allow_none=True, required=True)
    actionable = fields.Boolean(required=True, metadata={
        "description": "whether the applicant can act on it now (pay down cards, ask for "
                       "less, …), as recourse does"})


class ReasonCatalogueOut(Strict):
    spec_version = fields.String(required=True)
    policy_version = fields.String(required=True)
    items = fields.List(fields.Nested(ReasonEntryOut), required=True)
