"""Loan outcomes posted by the servicing system, and realised default against predicted PD."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from service.usecases.outcomes import DEFAULT_DAYS_PAST_DUE, STATUSES, days_problem
from service.web.schemas.common import JsonNumber, Strict, UtcDateTime

MONTH_SHAPE = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$",
                              error="must be a month written YYYY-MM, like 2026-11")
# Fifty years of months: more than any loan of the product runs.
MAX_MONTHS = 600
# Days past due are counted in whole days; ten thousand is decades past any write-off.
MAX_DAYS_PAST_DUE = 9999
# CNY are counted in fen: an amount drawn is at least one, and in whole fen.
FEN = 0.01
FEN_PLACES = 2


class DrawnAmount(JsonNumber):
    """The amount drawn: a JSON number (never a string) of CNY in whole fen, at least one fen.

    That it is at most the credit line granted is the loan's to check, not the body's.
    """

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"minimum": FEN, **kwargs.pop("metadata", {})}
        super().__init__(error_messages={
            "minimum": "must be at least 0.01 (one fen); got {value}",
            "fen": "must be in CNY to the fen, at most 2 decimal places; got {value}"},
            metadata=metadata, **kwargs)

    def _validated(self, value: Any) -> float:
        number = super()._validated(value)
        if not number >= FEN:
            raise self.make_error("minimum", value=number)
        if round(number, FEN_PLACES) != number:
            raise self.make_error("fen", value=number)
        return number


class JsonBoolean(fields.Boolean):
    """A JSON true or false: not a number, not a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class MonthIn(Strict):
    month = fields.String(required=True, validate=MONTH_SHAPE, metadata={
        "description": "the calendar month reported, YYYY-MM: not before the month of "
                       "approval (nor the month the loan was drawn) and not after the "
                       "current month (UTC)"})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES), metadata={
        "description": "`current` (0 days past due), `past_due` (1 day or more), `default` "
                       "(written off as a default) or `repaid` (0 days)"})
    days_past_due = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=0, max=MAX_DAYS_PAST_DUE), metadata={
        "description": f"days past due at the month's end; `past_due` with "
                       f"{DEFAULT_DAYS_PAST_DUE} or more makes the loan a default"})

    @validates_schema
    def _check(self, data, **kwargs):
        problem = days_problem(data["status"], data["days_past_due"])
        if problem is not None:
            raise ValidationError(problem, "days_past_due")


class OutcomeIn(Strict):
    application_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    drawn = JsonBoolean(required=True, metadata={
        "description": "whether the applicant drew the loan"})
    drawn_at = UtcDateTime(allow_none=True, metadata={
        "description": "when the loan was drawn (an ISO 8601 time with an offset): required "
                       "when drawn, absent or null otherwise"})
    amount = DrawnAmount(allow_none=True, metadata={
        "description": "CNY drawn, in whole fen (at most 2 decimal places), from 0.01 to "
                       "the credit line granted: required when drawn, absent or null "
                       "otherwise"})
    performance = fields.List(fields.Nested(MonthIn), load_default=list,
                              validate=validate.Length(max=MAX_MONTHS), metadata={
        "description": "months of performance; a month posted before is replaced. A loan not "
                       "drawn has none"})

    @validates_schema
    def _check(self, data, **kwargs):
        errors: dict[str, Any] = {}
        if data["drawn"]:
            for name in ("drawn_at", "amount"):
                if data.get(name) is None:
                    errors[name] = ["required when drawn is true"]
        else:
            for name in ("drawn_at", "amount"):
                if data.get(name) is not None:
                    errors[name] = ["must be absent or null when drawn is false"]
            if data["performance"]:
                errors["performance"] = ["must be empty when drawn is false: a loan not drawn "
                                         "has no performance"]
        seen: set[str] = set()
        repeated: dict[int, dict[str, list[str]]] = {}
        for index, entry in enumerate(data["performance"]):
            if entry["month"] in seen:
                repeated[index] = {"month": [f"{entry['month']} is given more than once"]}
            seen.add(entry["month"])
        if repeated and "performance" not in errors:
            errors["performance"] = repeated
        if errors:
            raise ValidationError(errors)


class MonthOut(Strict):
    month = fields.String(required=True)
    status = fields.String(required=True)
    days_past_due = fields.Integer(required=True)
    recorded_at = fields.String(required=True, metadata={
        "description": "when this month was last posted"})


class OutcomeOut(Strict):
    """A loan's whole outcome history, as posted, and whether it defaulted: nothing of its
    decision (the servicing system reads none)."""

    application_id = fields.String(required=True)
    drawn = fields.Boolean(required=True)
    drawn_at = fields.String(allow_none=True, required=True)
    amount = fields.Float(allow_none=True, required=True)
    defaulted = fields.Boolean(required=True)
    default_month = fields.String(allow_none=True, required=True, metadata={
        "description": "the first month that made the loan a default"})
    performance = fields.List(fields.Nested(MonthOut), required=True)
    recorded_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class RatesOut(Strict):
    loans = fields.Integer(required=True, metadata={"description": "drawn loans"})
    defaults = fields.Integer(required=True)
    default_rate = fields.Float(allow_none=True, required=True, metadata={
        "description": "realised default rate: defaults / loans"})
    mean_pd = fields.Float(allow_none=True, required=True, metadata={
        "description": "mean PD the decisions predicted"})
    ratio = fields.Float(allow_none=True, required=True, metadata={
        "description": "realised default rate / mean predicted PD"})


class GradeRatesOut(RatesOut):
    grade = fields.String(required=True)


class MonthRatesOut(RatesOut):
    month = fields.String(required=True, metadata={"description": "month of approval"})


class CalibrationOut(Strict):
    default_rule = fields.String(required=True)
    as_of = fields.String(required=True)
    by_grade = fields.List(fields.Nested(GradeRatesOut), required=True)
    by_month = fields.List(fields.Nested(MonthRatesOut), required=True)
    overall = fields.Nested(RatesOut, required=True)
