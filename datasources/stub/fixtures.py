"""Fixed records for chosen national IDs (``FLASHLOAN_STUB_FIXTURES``), laid over the world.

The file is a JSON object keyed by national ID. Each person maps source scopes to either a
record object (complete, or partial and merged over the generated record), or ``null`` /
one of the strings in :data:`EMPTY_WORDS` for the typed "no account / no record" answer.
Keys starting with ``_`` are comments, at both levels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasources import SCOPES
from datasources.base import empty_record
from datasources.identity import InvalidNationalId, parse_national_id
from datasources.records import RECORD_TYPES, RecordError, SourceRecord

EMPTY_WORDS = frozenset({"no_account", "not_enrolled", "no_record", "clean", "empty"})

Fixtures = Mapping[str, Mapping[str, Any]]


def load_fixtures(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a fixtures file; raise ValueError naming the file and what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"stub fixtures file {str(path)!r} must be readable; got "
                         f"{exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"stub fixtures file {str(path)!r} must be JSON; got an error at "
                         f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return normalise_fixtures(data, where=f"stub fixtures file {str(path)!r}")


def normalise_fixtures(data: Any, *, where: str = "stub fixtures") -> dict[str, dict[str, Any]]:
    """Check the shape of fixtures and key them by normalised national ID, comments dropped."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a JSON object keyed by national ID; "
                         f"got {type(data).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for key, person in data.items():
        if str(key).startswith("_"):
            continue
        try:
            nid = parse_national_id(key).number
        except InvalidNationalId as exc:
            raise ValueError(f"{where}: key {key!r} must be a valid national ID; {exc}") from None
        if not isinstance(person, Mapping):
            raise ValueError(f"{where}: person {key} must be an object of source records; "
                             f"got {type(person).__name__}")
        entry: dict[str, Any] = {}
        for scope, spec in person.items():
            if str(scope).startswith("_"):
                continue
            if scope not in SCOPES:
                raise ValueError(f"{where}: person {key}: source must be one of "
                                 f"{', '.join(SCOPES)}; got {scope!r}")
            if not (spec is None or isinstance(spec, Mapping)
                    or (isinstance(spec, str) and spec in EMPTY_WORDS)):
                raise ValueError(f"{where}: person {key} {scope} must be a record object, null "
                                 f"or one of {', '.join(sorted(EMPTY_WORDS))}; got {spec!r}")
            entry[scope] = spec
        out[nid] = entry
    return out


def apply_fixture(scope: str, generated: SourceRecord, spec: Any, *, where: str) -> SourceRecord:
    """Return the record a fixture pins for ``scope`` given the generated one."""
    if spec is None or (isinstance(spec, str) and spec in EMPTY_WORDS):
        return empty_record(scope)
    try:
        return RECORD_TYPES[scope].from_dict({**generated.to_dict(), **spec})  # type: ignore[return-value]
    except RecordError as exc:
        raise ValueError(f"{where} {scope} must be a valid record; {exc}") from None
