"""The strategies in force and their changes."""

from __future__ import annotations

from marshmallow import fields, validate

from service.usecases.plan_records import REFUSALS
from service.web.schemas.common import JsonNumber, Strict

_STRATEGY = {"description": "a strategy: MODEL/POLICY, a model version and a policy version",
             "example": "v1/2026.11"}


class ChallengerIn(Strict):
    strategy = fields.String(required=True, validate=validate.Length(min=3, max=200),
                             metadata=_STRATEGY)
    share = JsonNumber(required=True, validate=validate.Range(min=0, max=1), metadata={
        "description": "the share of applicants it decides, chosen from the pseudonymised "
                       "applicant: the same applicant always meets the same strategy"})


class StrategiesIn(Strict):
    champion = fields.String(required=True, validate=validate.Length(min=3, max=200),
                             metadata=_STRATEGY)
    challenger = fields.Nested(ChallengerIn, allow_none=True, load_default=None)
    shadows = fields.List(fields.String(validate=validate.Length(min=3, max=200)),
                          load_default=list, validate=validate.Length(max=8), metadata={
                              "description": "strategies that decide every application "
                                             "aside: recorded, never answered"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000),
                           metadata={"description": "why the strategies change (audited)"})


class ChallengerOut(Strict):
    strategy = fields.String(required=True)
    share = fields.Float(required=True)


class MemberOut(Strict):
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(
        ["champion", "challenger", "shadow"]))
    model_version = fields.String(required=True)
    policy_version = fields.String(required=True)
    share = fields.Float(allow_none=True, required=True)


class RefusedPlanOut(Strict):
    seq = fields.Integer(required=True, metadata={"description": "the stored plan refused"})
    audit_seq = fields.Integer(required=True, metadata={
        "description": "the audit record its row names"})
    reason = fields.String(required=True, validate=validate.OneOf(REFUSALS))
    problem = fields.String(required=True, metadata={"description": "why, for a person"})


class StrategiesOut(Strict):
    seq = fields.Integer(required=True, metadata={
        "description": "the number of the plan in force; 0 for the settings' model and policy "
                       "(none set, or none adopted)"})
    champion = fields.String(required=True)
    challenger = fields.Nested(ChallengerOut, allow_none=True, required=True)
    shadows = fields.List(fields.String(), required=True)
    members = fields.List(fields.Nested(MemberOut), required=True)
    set_by = fields.String(allow_none=True, required=True)
    set_at = fields.String(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True)
    refused = fields.Nested(RefusedPlanOut, allow_none=True, required=True, metadata={
        "description": "the newest stored plan when it is not the plan in force: its row does "
                       "not hold what its strategy.set record states, or it fails the checks "
                       "a change must pass; null when the newest is in force"})
    refresh_s = fields.Float(required=True, metadata={
        "description": "every decision made this many seconds after a change is made under "
                       "it, in every worker"})


class StrategiesSetOut(Strict):
    seq = fields.Integer(required=True)
    champion = fields.String(required=True)
    challenger = fields.Nested(ChallengerOut, allow_none=True, required=True)
    shadows = fields.List(fields.String(), required=True)
    set_by = fields.String(required=True)
    set_at = fields.String(required=True)
    reason = fields.String(required=True)
    previous = fields.Dict(required=True)
    audit_seq = fields.Integer(required=True, metadata={
        "description": "the audit record of the change"})
    effective_within_s = fields.Float(required=True)
