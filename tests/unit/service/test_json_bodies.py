"""The one JSON parser of request bodies: bounded nesting, oversized numbers, no NaN."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.web.views.blueprint import MAX_DEPTH, nesting_depth, parse_json_body

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30)


@given(JSON_VALUES)
def test_what_the_standard_parser_reads_is_read_alike(value):
    text = json.dumps(value)
    assert parse_json_body(text.encode()) == json.loads(text)


@given(st.text())
def test_brackets_inside_strings_are_not_nesting(text):
    assert nesting_depth(json.dumps([text, {"k": text}])) == 2


@pytest.mark.parametrize(("text", "depth"), [
    ("{}", 1), ("[[], [[]]]", 3), ('{"a": {"b": [1]}}', 3), ('"[[[["', 0),
    (r'["\"[[[", "\\", {"x": "]]]"}]', 2), ('["unterminated [[[[', 1), ("1", 0),
])
def test_nesting_depth(text, depth):
    assert nesting_depth(text) == depth


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1_000, 30_000])
def test_nesting_past_the_bound_is_refused_before_parsing(levels):
    with pytest.raises(json.JSONDecodeError, match=f"deeper than {MAX_DEPTH}"):
        parse_json_body(("[" * levels + "]" * levels).encode())
    assert parse_json_body(("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode()) is not None


@pytest.mark.parametrize("digits", [309, 4_301, 20_000])
def test_an_integer_beyond_any_float_is_read_as_infinite(digits):
    assert parse_json_body(("9" * digits).encode()) == math.inf
    assert parse_json_body(("-" + "9" * digits).encode()) == -math.inf
    assert parse_json_body(("9" * 308).encode()) == int("9" * 308)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(constant):
    with pytest.raises(json.JSONDecodeError, match="not a JSON value"):
        parse_json_body(f'{{"amount": {constant}}}'.encode())


def test_an_empty_body_is_the_standard_error_of_an_empty_document():
    with pytest.raises(json.JSONDecodeError) as caught:
        parse_json_body(b"")
    assert caught.value.doc == ""  # webargs reads this as "no body"
