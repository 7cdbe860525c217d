"""Backtests: a candidate strategy replayed over the decision log."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from service.usecases.backtests.run import DEFAULT_LGD
from service.web.schemas.common import JsonNumber, Strict, UtcDateTime


class BacktestIn(Strict):
    strategy = fields.String(required=True, validate=validate.Length(min=3, max=200), metadata={
        "description": "the candidate: MODEL/POLICY, a model version and a policy version "
                       "(names, never paths); its model must decide alone, not be a fallback",
        "example": "v1/2026.11"})
    since = UtcDateTime(load_default=None, metadata={
        "description": "the first decisions replayed (inclusive); by default the log's start"})
    until = UtcDateTime(load_default=None, metadata={
        "description": "the end of the decisions replayed (exclusive); by default now"})
    lgd = JsonNumber(load_default=DEFAULT_LGD, validate=validate.Range(min=0, max=1),
                     metadata={"description": "loss given default for the expected loss "
                                              "(PD × line × LGD over approvals)"})

    @validates_schema
    def _window(self, data: dict, **_kwargs) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("must be after since", "until")


class BacktestOut(Strict):
    backtest_id = fields.String(required=True)
    strategy = fields.String(required=True)
    since = fields.String(allow_none=True, required=True)
    until = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["queued", "running", "done", "failed", "cancelled"]))
    requested_by = fields.String(required=True)
    requested_at = fields.String(required=True)
    started_at = fields.String(allow_none=True, metadata={
        "description": "when a runner took it up; null while it waits"})
    finished_at = fields.String(allow_none=True, required=True)
    cancelled_by = fields.String(allow_none=True, metadata={
        "description": "the risk officer who cancelled it (role:key id), when cancelled"})
    rows = fields.Integer(allow_none=True, required=True, metadata={
        "description": "the logged decisions replayed"})
    error = fields.String(allow_none=True, required=True)
    summary = fields.Dict(allow_none=True, metadata={
        "description": "once done: approval rates, the swap matrix, expected loss, realised "
                       "default rates, the score's PSI against the recorded one, and the "
                       "decisions that would change"})


class BacktestListOut(Strict):
    items = fields.List(fields.Nested(BacktestOut), required=True)
