"""Canonical JSON, its SHA-256, and the one text form of a time: the project's only copy.

Every hash that must come out the same tomorrow is built here: the audit trail's payload and
record hashes, the consent digest, the policy and feature-spec digests, and the idempotency
key's body hash. The form must never change, since stored hashes are checked against it.

Rules (docs/audit.md repeats them for auditors):

- objects: keys must be strings, sorted by Unicode code point; no whitespace anywhere;
- text: UTF-8, non-ASCII characters written as themselves, only ``"``, ``\\`` and control
  characters escaped (Python's ``json`` escaping);
- numbers: integers in decimal; floats in Python's shortest round-trip form (``repr``), never
  NaN or infinity; ``Decimal`` as a JSON *string* in plain notation with trailing zeros removed
  (``Decimal("1200.50")`` -> ``"1200.5"``) so that no reader turns money into a float;
- times: an aware ``datetime`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (always six
  fractional digits); a ``date`` as ``YYYY-MM-DD``; a ``UUID`` as its lower-case hyphenated
  form; tuples as arrays; dataclass instances as objects of their fields;
- refused: bytes, sets, naive datetimes, non-string keys and anything else.

This is not RFC 8785 (JCS): floats are written as Python writes them (``20000.0``, ``1e+16``)
where JCS writes ``20000`` and ``10000000000000000``, and keys sort by code point, not by
UTF-16 unit. Moving to JCS would change the hash of every stored record.

The package imports nothing of the project, so that every package may use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "canonical_form",
    "canonical_json",
    "canonical_text",
    "digest",
    "format_time",
    "normalise",
    "parse_time",
    "sha256_hex",
]

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 of ``data`` as 64 lower-case hex digits."""
    return hashlib.sha256(data).hexdigest()


def digest(obj: Any) -> str:
    """Return the SHA-256 (hex) of ``obj``'s canonical JSON."""
    return hashlib.sha256(canonical_form(obj)[1]).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON, UTF-8 bytes."""
    return canonical_form(obj)[1]


def canonical_text(obj: Any) -> str:
    """Encode ``obj`` as canonical JSON text."""
    return canonical_form(obj)[1].decode("utf-8")


def canonical_form(obj: Any) -> tuple[Any, bytes]:
    """Return ``obj`` as plain JSON values and as canonical JSON bytes."""
    plain = normalise(obj)
    try:
        data = _ENCODER.encode(plain).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode; got a string with a lone surrogate") from None
    return plain, data


def normalise(obj: Any) -> Any:
    """Return ``obj`` as plain JSON values (dict, list, str, int, float, bool, None)."""
    try:
        return _normalise(obj)
    except _Invalid as exc:
        where = "$" + "".join(reversed(exc.path))
        raise ValueError(f"{where} {exc.problem}") from None


class _Invalid(Exception):
    """A value that has no canonical form; ``path`` grows as the error climbs out."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


_PLAIN = frozenset({str, int, bool, type(None)})
_isfinite = math.isfinite


def _normalise(obj: Any) -> Any:
    # Leaves of the exact built-in types are handled inline, without a call per value: this
    # walk runs over every payload appended. The path of a bad value is only assembled on
    # the way out of an error, so valid payloads pay nothing for it.
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind is float:
        if not _isfinite(obj):
            raise _Invalid(f"must be a finite number; got {obj!r}")
        return obj
    if kind is dict or isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise _Invalid(f"keys must be strings; got {type(key).__name__} {key!r}")
                key = str(key)
            kind = type(value)
            if kind in _PLAIN or (kind is float and _isfinite(value)):
                out[key] = value
                continue
            try:
                out[key] = _normalise(value)
            except _Invalid as exc:
                exc.path.append(f".{key}")
                raise
        return out
    if kind is list or kind is tuple or isinstance(obj, list | tuple):
        items = []
        for index, item in enumerate(obj):
            kind = type(item)
            if kind in _PLAIN or (kind is float and _isfinite(item)):
                items.append(item)
                continue
            try:
                items.append(_normalise(item))
            except _Invalid as exc:
                exc.path.append(f"[{index}]")
                raise
        return items
    return _normalise_other(obj)


def _normalise_other(obj: Any) -> Any:
    # Subclasses of the JSON types (StrEnum, IntEnum, ...) are written as their plain value.
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _normalise(float(obj))
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise _Invalid(f"must be a finite decimal; got {obj}")
        if obj.is_zero():
            return "0"
        # Trailing zeros are stripped by hand: Decimal.normalize() would also round to the
        # context's precision and change the value.
        sign, digits, exponent = obj.as_tuple()
        assert isinstance(exponent, int)  # only NaN and infinities have a letter here
        while digits[-1] == 0:
            digits, exponent = digits[:-1], exponent + 1
        return format(Decimal((sign, digits, exponent)), "f")
    if isinstance(obj, datetime):
        if obj.tzinfo is None or obj.utcoffset() is None:
            raise _Invalid(f"must be timezone-aware; got naive {obj.isoformat()}")
        return format_time(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _normalise({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, bytes | bytearray | memoryview):
        raise _Invalid("must be text (encode bytes as hex or base64); got bytes")
    if isinstance(obj, set | frozenset):
        raise _Invalid("must be a list (sets have no stable order); got a set")
    raise _Invalid(
        f"must be a JSON value, Decimal, datetime, date or UUID; got {type(obj).__name__}"
    )


def format_time(moment: datetime, *, what: str = "time") -> str:
    """Return an aware ``moment`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    if not isinstance(moment, datetime):
        raise ValueError(f"{what} must be a datetime; got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware; got naive {moment.isoformat()}")
    u = moment.astimezone(UTC)
    # Formatted by hand: strftime does not zero-pad years below 1000 on every platform.
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def parse_time(text: str) -> datetime:
    """Parse a time written by :func:`format_time` back into an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time must end in Z or carry an offset; got {text!r}")
    return moment.astimezone(UTC)
