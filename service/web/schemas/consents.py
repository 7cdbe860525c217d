"""Consents: what a channel records of an applicant's consent, and what it reads back."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from datasources import SCOPES
from service.web.schemas.common import NationalIdField, Strict, UtcDateTime


class ConsentIn(Strict):
    national_id = NationalIdField(required=True)
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
