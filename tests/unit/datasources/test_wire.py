"""The HTTP wire format, decoded without a network."""

from __future__ import annotations

import json

import pytest

from datasources.base import empty_record
from datasources.errors import SourceMalformed
from datasources.http import wire
from datasources.stub.adapters import StubWorld

from .fakes import NID

RECORD = StubWorld().record("income_tax", NID)


def test_answer_round_trip():
    assert wire.decode_answer("income_tax", wire.encode_answer("income_tax", RECORD)) == RECORD


def test_query_round_trip_keeps_the_id_out_of_the_path():
    assert wire.decode_query(wire.encode_query(NID)) == NID
    assert wire.query_path("income_tax") == "/v1/sources/income_tax/query"


@pytest.mark.parametrize(("body", "message"), [
    (b"\xff\xfe", "not UTF-8"),
    (b'{"scope": "income_tax", "record": {', "not valid JSON"),
    (b"[1, 2]", "expected an object with scope and record"),
    (b'{"scope": "court_records", "record": {}}', "answer is for another source"),
    (b'{"scope": "income_tax", "record": {"has_record": true}}', "is missing fields"),
    (b'{"scope": "income_tax", "record": []}', "must be a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not valid JSON"),
])
def test_bad_answers_are_malformed(body, message):
    with pytest.raises(SourceMalformed, match=message):
        wire.decode_answer("income_tax", body)


def test_schema_errors_do_not_echo_values():
    data = {"scope": "income_tax", "record": {**RECORD.to_dict(), "tax_paid_12m": "secret-value"}}
    with pytest.raises(SourceMalformed) as caught:
        wire.decode_answer("income_tax", json.dumps(data).encode())
    assert "tax_paid_12m" in str(caught.value)
    assert "secret-value" not in str(caught.value)


def test_only_an_explicit_no_record_is_an_empty_answer():
    assert wire.is_no_record(wire.encode_error("no_record", "nothing"))
    assert not wire.is_no_record(wire.encode_error("not_found", "no such path"))
    assert not wire.is_no_record(b"<html>Not Found</html>")
    assert empty_record("income_tax").has_record is False


@pytest.mark.parametrize(
    "body", [b"", b"{}", b'{"national_id": 1}', b'{"national_id": "x", "a": 1}'])
def test_bad_queries_are_rejected(body):
    with pytest.raises(ValueError):
        wire.decode_query(body)
