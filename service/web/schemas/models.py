"""Model cards and health."""

from __future__ import annotations

from marshmallow import fields, validate

from service.web.schemas.common import (
    Strict,
)

ROLES = ["champion", "challenger", "shadow", "fallback"]


class ModelSummaryOut(Strict):
    version = fields.String(required=True)
    created = fields.String(required=True)
    active = fields.Boolean(required=True, metadata={"description": "the champion's model"})
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True, metadata={
        "description": "its roles in the strategies in force; empty when it decides nothing"})
    auc = fields.Float(required=True)
    oracle_auc = fields.Float(allow_none=True, required=True)
    features = fields.Integer(required=True)


class ModelListOut(Strict):
    items = fields.List(fields.Nested(ModelSummaryOut), required=True)


class ModelCardOut(Strict):
    version = fields.String(required=True)
    active = fields.Boolean(required=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)
    card = fields.Dict(required=True)


class HealthOut(Strict):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
