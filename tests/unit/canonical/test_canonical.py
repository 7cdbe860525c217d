"""Canonical JSON: one byte string per value, whatever the insertion order or the type."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum, StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canonical import (
    canonical_json,
    canonical_text,
    digest,
    format_time,
    parse_time,
    sha256_hex,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
)


@given(json_values)
def test_output_is_json_sorted_and_without_whitespace(value) -> None:
    out = canonical_json(value)
    assert json.loads(out) == value
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert out == expected.encode("utf-8")


@given(json_values)
def test_encoding_is_idempotent(value) -> None:
    out = canonical_json(value)
    assert canonical_json(json.loads(out)) == out


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8))
def test_key_insertion_order_does_not_matter(mapping) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert canonical_json(reversed_mapping) == canonical_json(mapping)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_keep_their_value_and_equal_values_encode_alike(number: Decimal) -> None:
    out = json.loads(canonical_json(number))
    assert isinstance(out, str)
    assert Decimal(out) == number
    sign, digits, exponent = number.as_tuple()
    padded = Decimal((sign, (*digits, 0, 0, 0), exponent - 3))  # same value, other exponent
    assert canonical_json(padded) == canonical_json(number)


@given(aware_datetimes)
def test_times_are_utc_with_microseconds_and_round_trip(moment: datetime) -> None:
    text = format_time(moment)
    assert len(text) == 27 and text.endswith("Z") and text[10] == "T"
    assert parse_time(text) == moment
    assert canonical_json(moment) == f'"{text}"'.encode()


@given(aware_datetimes, aware_datetimes)
def test_time_text_sorts_like_the_times(a: datetime, b: datetime) -> None:
    assert (format_time(a) < format_time(b)) == (a < b)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'),
        ({"名": "张三"}, '{"名":"张三"}'.encode()),
        ({"b": "社保", "a": 1}, '{"a":1,"b":"社保"}'.encode()),
        ('line\nbreak "q" \\', b'"line\\nbreak \\"q\\" \\\\"'),
        (0.1, b"0.1"),
        (1.0, b"1.0"),
        (1e16, b"1e+16"),
        (-0.0, b"-0.0"),
        (2**70, b"1180591620717411303424"),
        (Decimal("1200.50"), b'"1200.5"'),
        (Decimal("1E+3"), b'"1000"'),
        (Decimal("-0.00"), b'"0"'),
        (Decimal("1.23456789012345678901234567890123"), b'"1.23456789012345678901234567890123"'),
        (
            datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))),
            b'"2024-05-01T08:00:00.000000Z"',
        ),
        (datetime(999, 1, 2, tzinfo=UTC), b'"0999-01-02T00:00:00.000000Z"'),
        (date(2024, 2, 29), b'"2024-02-29"'),
        (
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            b'"12345678-1234-5678-1234-567812345678"',
        ),
        ((1, (2, 3)), b"[1,[2,3]]"),
    ],
)
def test_examples(value, expected: bytes) -> None:
    assert canonical_json(value) == expected


class Grade(StrEnum):
    A = "A"


class Term(IntEnum):
    TWELVE = 12


@dataclass(frozen=True)
class TaxRecord:
    annual_income: Decimal
    months: int


def test_enums_and_dataclasses_encode_as_their_values() -> None:
    assert canonical_json({"g": Grade.A, "t": Term.TWELVE}) == b'{"g":"A","t":12}'
    assert canonical_json(TaxRecord(Decimal("120000.00"), 12)) == (
        b'{"annual_income":"120000","months":12}'
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": float("nan")}, r"\$\.x must be a finite number; got nan"),
        ([1, float("inf")], r"\$\[1\] must be a finite number; got inf"),
        ({"a": {"b": [Decimal("NaN")]}}, r"\$\.a\.b\[0\] must be a finite decimal"),
        ({"at": datetime(2024, 1, 1)}, r"\$\.at must be timezone-aware; got naive"),
        ({"raw": b"\x00"}, r"\$\.raw must be text \(encode bytes as hex or base64\); got bytes"),
        ({"s": {1, 2}}, r"\$\.s must be a list \(sets have no stable order\)"),
        ({1: "a"}, r"\$ keys must be strings; got int 1"),
        ({"o": object()}, r"\$\.o must be a JSON value, Decimal, datetime, date or UUID"),
        ("\ud800", "lone surrogate"),
    ],
)
def test_values_without_a_canonical_form_are_refused(value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_json(value)


def test_text_form_and_digest() -> None:
    assert canonical_text({"名": 1}) == '{"名":1}'
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert digest({"名": 1}) == sha256_hex('{"名":1}'.encode())


@pytest.mark.parametrize("bad", [datetime(2024, 1, 1), "2024-01-01", None])
def test_format_time_refuses_what_is_not_an_aware_datetime(bad) -> None:
    with pytest.raises(ValueError, match="time must be"):
        format_time(bad)


def test_parse_time_refuses_a_time_without_zone() -> None:
    with pytest.raises(ValueError, match="must end in Z"):
        parse_time("2024-01-01T00:00:00")
