"""One rule for every number a request body holds: a JSON number, never a string that reads
as one nor a boolean, and finite."""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Iterator

import pytest
from marshmallow import Schema, ValidationError, fields

import service.web.schemas
import service.web.views
from service.web.schemas.common import Strict


def body_schemas() -> list[type[Schema]]:
    """Every schema of a request body: ``…In``, in the schemas and the views."""
    for package in (service.web.schemas, service.web.views):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    found, todo = set(), [Strict]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__name__.endswith("In"):
            found.add(cls)
    return sorted(found, key=lambda cls: cls.__name__)


def numbers(schema: Schema, prefix: str = "") -> Iterator[tuple[str, fields.Field]]:
    """The numeric fields of ``schema``, nested ones and list items included, by path."""
    for name, field in schema.fields.items():
        where = f"{prefix}{name}"
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            yield from numbers(inner.schema, f"{where}.")
        elif isinstance(inner, fields.Number):
            yield where, inner


NUMBERS = [(f"{cls.__name__}.{path}", field) for cls in body_schemas()
           for path, field in numbers(cls())]


def test_the_bodies_hold_numbers():
    named = {name for name, _ in NUMBERS}
    assert {"LoanRequestIn.amount", "BacktestIn.lgd", "StrategiesIn.challenger.share",
            "TermsIn.credit_limit", "OutcomeIn.amount"} <= named, named


@pytest.mark.parametrize(("name", "field"), NUMBERS, ids=[name for name, _ in NUMBERS])
@pytest.mark.parametrize("value", ["0.5", "1", "", True, False, math.nan, math.inf, -math.inf])
def test_every_number_of_a_body_is_a_finite_json_number(name, field, value):
    with pytest.raises(ValidationError):
        field.deserialize(value)
