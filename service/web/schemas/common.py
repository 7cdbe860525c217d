"""What every schema shares: strictness, identity and time fields, the policy's bounds on
requests, and the error envelope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from datasources.identity import InvalidNationalId, NationalIdText, parse_national_id
from scoring.online.policy import Policy, load_policy

# Shapes for the OpenAPI document; the validators below check the rest (GB 11643 checksum).
NATIONAL_ID_SHAPE = validate.Regexp(r"^\d{17}[\dXx]$", error="national ID must be 17 digits "
                                    "followed by a digit or X")
MOBILE_SHAPE = validate.Regexp(r"^1[3-9]\d{9}$",
                               error="mobile must be 11 digits starting with 13-19")
KIND_SHAPE = validate.Regexp(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
                        error="must be dotted lower-case words like decision.made")
TOKEN_SHAPE = validate.Regexp(r"^[A-Za-z0-9._:\-]+$",
                         error="must be letters, digits and . _ : - only")


def valid_national_id(value: str) -> None:
    try:
        parse_national_id(value)
    except InvalidNationalId as exc:
        raise ValidationError(str(exc)) from None


class NationalIdField(fields.String):
    """A national ID: valid (GB 11643), read as text that keeps its parse, so that the
    request's decision does not parse it again (:class:`datasources.identity.NationalIdText`)."""

    def __init__(self, **kwargs: Any) -> None:
        # The shape is also what the API description states (a pattern).
        super().__init__(validate=NATIONAL_ID_SHAPE, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return NationalIdText(text, parse_national_id(text))
        except InvalidNationalId as exc:
            raise ValidationError(str(exc)) from None


class Strict(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


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


# Where the policy that bounds requests comes from while a body is read: set by
# ``checked_against`` (the app does it for every request, with its policy in force).
_POLICY_SOURCE: ContextVar[Callable[[], Policy] | None] = ContextVar("policy_source",
                                                                    default=None)


@contextmanager
def checked_against(policy: Callable[[], Policy]) -> Iterator[None]:
    """Check the amounts and terms of the requests loaded inside the block against the
    policy ``policy()`` returns, asked when a field is checked."""
    token = _POLICY_SOURCE.set(policy)
    try:
        yield
    finally:
        _POLICY_SOURCE.reset(token)


def policy_in_force() -> Policy:
    """The policy requests are checked against: the one given by :func:`checked_against`
    (in the serving app, the champion's), else the shipped default. A challenger whose policy
    offers fewer declines the rest by its own rules."""
    source = _POLICY_SOURCE.get()
    return source() if source is not None else load_policy()


_JSON_TYPES = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}


class JsonNumber(fields.Float):
    """A JSON number, never a string that reads as one, nor NaN or an infinity."""

    def __init__(self, **kwargs: Any) -> None:
        messages = {"invalid": "must be a JSON number; got {kind}",
                    **kwargs.pop("error_messages", {})}
        super().__init__(allow_nan=False, error_messages=messages, **kwargs)

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", kind=_JSON_TYPES.get(type(value), "another value"))
        return super()._validated(value)


class RequestedAmount(JsonNumber):
    """The amount asked for: a JSON number (never a string) in the product's line range."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(error_messages={
            "range": "must be a number from {low:g} to {high:g}; got {value:g}"}, **kwargs)

    def _validated(self, value: Any) -> float:
        number = super()._validated(value)
        low, high = policy_in_force().amount_range
        if not low <= number <= high:  # also the infinities
            raise self.make_error("range", low=low, high=high, value=number)
        return number


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


# The key that marks, in the built API document, a property whose bounds the policy sets:
# its value names which (see ``policy_document``).
POLICY_BOUNDS = "x-policy-bounds"


def document_policy(converter: Any) -> None:
    """Teach an apispec converter to mark the properties whose bounds the policy sets on
    requests (once per converter).

    The policy in force changes with the strategies, so the document is built with marks
    rather than numbers; :func:`policy_document` writes a policy's bounds in their place
    each time the document is served.
    """
    if getattr(converter, "policy_bounds", None) is not None:
        return

    def policy_bounds(self: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
        if isinstance(field, RequestedAmount):
            return {POLICY_BOUNDS: "amount_range"}
        if isinstance(field, OfferedTerm):
            return {POLICY_BOUNDS: "terms_months"}
        return {}

    converter.add_attribute_function(policy_bounds)


def policy_document(document: Any, policy: Policy) -> Any:
    """Return a copy of an API document built with :func:`document_policy`'s marks, each
    replaced by the bounds ``policy`` sets: an amount's ``minimum`` and ``maximum``, a term's
    ``enum``."""
    if isinstance(document, list):
        return [policy_document(item, policy) for item in document]
    if not isinstance(document, dict):
        return document
    copy: dict[Any, Any] = {}
    for key, value in document.items():
        if key != POLICY_BOUNDS:
            copy[key] = policy_document(value, policy)
        elif value == "amount_range":
            copy["minimum"], copy["maximum"] = policy.amount_range
        elif value == "terms_months":
            copy["enum"] = list(policy.terms_months)
        else:
            raise ValueError(f"{POLICY_BOUNDS} names no bounds of a policy: {value!r}")
    return copy


class ErrorBody(Strict):
    code = fields.String(required=True)
    message = fields.String(required=True)
    # Named apart from Schema.fields, the schema's own table of fields.
    fields_ = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                          required=True, data_key="fields", attribute="fields")


class ErrorSchema(Strict):
    """The one error envelope."""

    error = fields.Nested(ErrorBody, required=True)
