"""Model cards and health."""

from __future__ import annotations

from marshmallow import fields

from service.schemas.common import (
    Strict,
)


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
