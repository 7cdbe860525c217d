"""Request and response schemas (marshmallow); unknown fields are rejected everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import has_app_context
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from datasources import SCOPES
from datasources.identity import InvalidNationalId, parse_national_id
from scoring.policy import PURPOSES, Policy, load_policy

# Shapes for the OpenAPI document; the validators below check the rest (GB 11643 checksum).
NATIONAL_ID_SHAPE = validate.Regexp(r"^\d{17}[\dXx]$", error="national ID must be 17 digits "
                                    "followed by a digit or X")
MOBILE_SHAPE = validate.Regexp(r"^1[3-9]\d{9}$",
                               error="mobile must be 11 digits starting with 13-19")
_KIND = validate.Regexp(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
                        error="must be dotted lower-case words like decision.made")
_TOKEN = validate.Regexp(r"^[A-Za-z0-9._:\-]+$",
                         error="must be letters, digits and . _ : - only")


def _national_id(value: str) -> None:
    try:
        parse_national_id(value)
    except InvalidNationalId as exc:
        raise ValidationError(str(exc)) from None


class Strict(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


# -- values every schema reads the same way ------------------------------------------------

def to_utc(moment: datetime) -> datetime:
    """Return an aware ``moment`` in UTC, or raise ValueError if UTC cannot hold it.

    An offset can carry a time of 0001-01-01 or 9999-12-31 outside the calendar Python
    (and the audit log) can represent.
    """
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall between 0001-01-01 and 9999-12-31 in UTC") from None


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 time with an offset, read as UTC; one UTC cannot hold is invalid."""

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return to_utc(moment)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def policy_in_force() -> Policy:
    """The policy the serving app decides with (outside an app, the shipped default)."""
    if has_app_context():
        from service.wiring import wiring

        return wiring().engine.policy
    return load_policy()


_JSON_TYPES = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}


class RequestedAmount(fields.Float):
    """The amount asked for: a JSON number (never a string) in the product's line range."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, error_messages={
            "invalid": "must be a JSON number; got {kind}",
            "range": "must be a number from {low:g} to {high:g}; got {value:g}"}, **kwargs)

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", kind=_JSON_TYPES.get(type(value), "another value"))
        low, high = policy_in_force().amount_range
        if not low <= value <= high:  # also NaN and the infinities
            raise self.make_error("range", low=low, high=high, value=value)
        return super()._validated(value)


class OfferedTerm(fields.Integer):
    """The term asked for: a JSON integer of months, one the product offers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, error_messages={
            "invalid": "must be a whole number of months (a JSON integer)",
            "offered": "must be one of {terms} (months); got {value}"}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        months = super()._deserialize(value, attr, data, **kwargs)
        terms = policy_in_force().terms_months
        if months not in terms:
            raise self.make_error("offered", terms=", ".join(map(str, terms)), value=months)
        return months


def document_policy(converter: Any, policy: Policy) -> None:
    """Teach an apispec converter the bounds ``policy`` sets on requests (once per converter).

    The bounds are the policy's, known only once the app has chosen it, so they are added to
    the OpenAPI document as it is built rather than written into the fields.
    """
    if getattr(converter, "policy_bounds", None) is not None:
        return

    def policy_bounds(self: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
        if isinstance(field, RequestedAmount):
            low, high = policy.amount_range
            return {"minimum": low, "maximum": high}
        if isinstance(field, OfferedTerm):
            return {"enum": list(policy.terms_months)}
        return {}

    converter.add_attribute_function(policy_bounds)


class ErrorBody(Strict):
    code = fields.String(required=True)
    message = fields.String(required=True)
    # Named apart from Schema.fields, the schema's own table of fields.
    fields_ = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                          required=True, data_key="fields", attribute="fields")


class ErrorSchema(Strict):
    """The one error envelope."""

    error = fields.Nested(ErrorBody, required=True)


# -- consents ------------------------------------------------------------------------------

class ConsentIn(Strict):
    national_id = fields.String(required=True, validate=[NATIONAL_ID_SHAPE, _national_id])
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(min=1, max=len(SCOPES)))
    purpose = fields.String(required=True, validate=validate.OneOf(["credit_application"]))
    granted_at = UtcDateTime(required=True)
    expires_at = UtcDateTime(required=True)
    text_version = fields.String(required=True, validate=validate.Length(min=1, max=40))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=100))

    @validates_schema
    def _check(self, data, **kwargs):
        if len(set(data["scopes"])) != len(data["scopes"]):
            raise ValidationError("scopes must not repeat", "scopes")
        if data["expires_at"] <= data["granted_at"]:
            raise ValidationError("expires_at must be after granted_at", "expires_at")


class ConsentOut(Strict):
    consent_id = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    purpose = fields.String(required=True)
    granted_at = fields.String(required=True)
    expires_at = fields.String(required=True)
    text_version = fields.String(required=True)
    channel = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["live", "expired",
                                                                   "withdrawn", "pending"]))
    withdrawn_at = fields.String(allow_none=True, required=True)
    created_at = fields.String(required=True)


# -- applications --------------------------------------------------------------------------

class ApplicantIn(Strict):
    national_id = fields.String(required=True, validate=[NATIONAL_ID_SHAPE, _national_id])
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
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


# -- models and health -----------------------------------------------------------------------

class ModelSummaryOut(Strict):
    version = fields.String(required=True)
    created = fields.String(required=True)
    active = fields.Boolean(required=True)
    auc = fields.Float(required=True)
    oracle_auc = fields.Float(allow_none=True, required=True)
    features = fields.Integer(required=True)


class ModelListOut(Strict):
    items = fields.List(fields.Nested(ModelSummaryOut), required=True)


class ModelCardOut(Strict):
    version = fields.String(required=True)
    active = fields.Boolean(required=True)
    card = fields.Dict(required=True)


class HealthOut(Strict):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


# -- audit -------------------------------------------------------------------------------------

class AuditFilterArgs(Strict):
    since = UtcDateTime(metadata={"description": "inclusive"})
    until = UtcDateTime(metadata={"description": "exclusive"})
    kind = fields.List(fields.String(validate=[validate.Length(min=1, max=64), _KIND]),
                       validate=validate.Length(max=10))
    application_id = fields.String(validate=[validate.Length(min=1, max=64), _TOKEN])
    actor = fields.String(validate=[validate.Length(min=1, max=128), _TOKEN])
    national_id = fields.String(validate=[NATIONAL_ID_SHAPE, _national_id],
                                metadata={"description": "hashed by the service; never stored"})
    outcome = fields.String(validate=validate.OneOf(["approved", "declined", "deferred"]))
    model_version = fields.String(validate=[validate.Length(min=1, max=64), _TOKEN])
    reason_code = fields.String(validate=[validate.Length(min=1, max=16), _TOKEN])


class AuditListArgs(AuditFilterArgs):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=[validate.Length(min=1, max=500),
                                     validate.Regexp(r"^[A-Za-z0-9_\-=.]+$",
                                                     error="not a cursor")])


class AuditExportArgs(AuditFilterArgs):
    format = fields.String(load_default="jsonl", validate=validate.OneOf(["jsonl", "csv"]))


class VerifyArgs(Strict):
    start = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "first record to walk (default 1); past the last record is a 422"})
    end = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "last record to walk (default: the last); before start is a 422"})
    applications = fields.Boolean(load_default=False, metadata={
        "description": "also check each application's stored answer against the SHA-256 "
                       "its audit records state (answer_sha256)"})


class AuditRecordOut(Strict):
    seq = fields.Integer(required=True)
    recorded_at = fields.String(required=True)
    kind = fields.String(required=True)
    application_id = fields.String(allow_none=True, required=True)
    actor = fields.String(allow_none=True, required=True)
    payload = fields.Dict(allow_none=True, required=True)
    payload_hash = fields.String(required=True)
    prev_hash = fields.String(required=True)
    record_hash = fields.String(required=True)


class AuditPageOut(Strict):
    items = fields.List(fields.Nested(AuditRecordOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AnswersCheckOut(Strict):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={
        "description": "answers compared with the hash their latest record states"})
    unhashed = fields.Integer(required=True, metadata={
        "description": "answers decided before answers were hashed: not checked"})
    purged = fields.Integer(required=True, metadata={
        "description": "answers whose records were purged: not checked"})
    failed = fields.Integer(required=True)
    application_id = fields.String(allow_none=True, required=True, metadata={
        "description": "the first application whose answer fails"})
    seq = fields.Integer(allow_none=True, required=True, metadata={
        "description": "the record whose hash it fails"})
    reason = fields.String(allow_none=True, required=True, metadata={
        "description": "altered, unrecorded or record_altered"})
    message = fields.String(required=True)


class VerifyOut(Strict):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True)
    first_bad_seq = fields.Integer(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True)
    message = fields.String(required=True)
    checkpoint_held = fields.Integer(allow_none=True, required=True, metadata={
        "description": "seq of the last checkpoint that still holds, when one fails"})
    checkpoint_failed = fields.Integer(allow_none=True, required=True, metadata={
        "description": "seq of the first checkpoint that fails"})
    checkpoints = fields.Integer(required=True, metadata={
        "description": "signed checkpoints compared: the service's (its folder and ledger), "
                       "each verified with the service's public key"})
    applications = fields.Nested(AnswersCheckOut, allow_none=True, required=True, metadata={
        "description": "the answers' check, with applications=true; else null"})


class ReplayOut(Strict):
    application_id = fields.String(required=True)
    attempt = fields.Integer(required=True, metadata={
        "description": "which attempt's decision was replayed: the application's latest"})
    match = fields.Boolean(required=True)
    recorded = fields.Dict(required=True)
    replayed = fields.Dict(required=True)
    differences = fields.List(fields.Dict(), required=True)
    note = fields.String(allow_none=True, required=True)


# -- reviews -----------------------------------------------------------------------------------

class ReviewRequestIn(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ResolutionIn(Strict):
    outcome = fields.String(required=True, validate=validate.OneOf(["upheld", "overturned"]))
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))


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
