"""The HTTP wire format between the HTTP adapters and a source server (the stub server too).

A query is ``POST /v1/sources/{scope}/query`` with the body ``{"national_id": "..."}``: the
ID travels in the body so it never lands in URLs, proxy logs or access logs. A found
person is ``200`` with ``{"scope": ..., "record": {...}}``; a person the source explicitly
has nothing on may be ``404`` with ``{"error": {"code": "no_record", ...}}``. Every other
failure is an HTTP error status with ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
from typing import Any

from datasources.base import check_scope
from datasources.errors import SourceMalformed
from datasources.records import RECORD_TYPES, RecordError, SourceRecord

QUERY_PATH = "/v1/sources/{scope}/query"
JSON_TYPE = "application/json"
NO_RECORD = "no_record"
MAX_QUERY_BYTES = 4096


def query_path(scope: str) -> str:
    """Return the path a query of ``scope`` is posted to."""
    return QUERY_PATH.format(scope=check_scope(scope))


def encode_query(national_id: str) -> bytes:
    """Return the body of a query."""
    return json.dumps({"national_id": national_id}).encode()


def decode_query(body: bytes) -> str:
    """Return the national ID of a query body; raise ValueError if it is not one."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("query body must be JSON") from None
    if not isinstance(data, dict) or set(data) != {"national_id"}:
        raise ValueError("query body must be an object with exactly national_id")
    if not isinstance(data["national_id"], str):
        raise ValueError("national_id must be a string")
    return data["national_id"]


def encode_answer(scope: str, record: SourceRecord) -> bytes:
    """Return the body of a successful answer."""
    return json.dumps({"scope": scope, "record": record.to_dict()},
                      ensure_ascii=False).encode("utf-8")


def encode_error(code: str, message: str) -> bytes:
    """Return the body of an error answer."""
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _load(scope: str, body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise SourceMalformed(scope, "answer is not UTF-8") from None
    except json.JSONDecodeError:
        raise SourceMalformed(scope, "answer is not valid JSON") from None
    except RecursionError:
        raise SourceMalformed(scope, "answer is nested too deeply") from None


def decode_answer(scope: str, body: bytes) -> SourceRecord:
    """Turn a successful answer into a record; raise SourceMalformed if it is not one."""
    data = _load(scope, body)
    if not isinstance(data, dict) or set(data) != {"scope", "record"}:
        raise SourceMalformed(scope, "answer does not match the record schema "
                                     "(expected an object with scope and record)")
    if data["scope"] != scope:
        raise SourceMalformed(scope, "answer is for another source")
    try:
        return RECORD_TYPES[scope].from_dict(data["record"])  # type: ignore[return-value]
    except RecordError as exc:
        # Keep the field and the rule, drop the offending value: it may be personal data.
        rule = str(exc).split("; got", 1)[0]
        raise SourceMalformed(scope, f"answer does not match the record schema: {rule}") from None
    except TypeError:
        raise SourceMalformed(scope, "answer does not match the record schema") from None


def is_no_record(body: bytes) -> bool:
    """Return whether an error answer says explicitly that the source has nothing."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    error = data.get("error") if isinstance(data, dict) else None
    return isinstance(error, dict) and error.get("code") == NO_RECORD
