"""Streaming export of records as JSON lines or CSV, one line per record."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Engine

from audit.queries import batches
from audit.records import AuditQuery
from audit.schema import CHAINED_COLUMNS

__all__ = ["FORMATS", "export_lines"]

FORMATS = ("jsonl", "csv")


def export_lines(engine: Engine, fmt: str, query: AuditQuery, batch_size: int) -> Iterator[str]:
    """Return an iterator of lines (each ending in a newline) of the records matching query.

    The payload is written as stored: in JSON lines as the embedded canonical JSON object,
    in CSV as the canonical JSON text, so that an auditor can re-hash it. A purged payload
    is ``null`` in JSON lines and an empty cell in CSV.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    rows = (row for batch in batches(engine, query, batch_size) for row in batch)
    return _jsonl(rows) if fmt == "jsonl" else _csv(rows)


def _jsonl(rows: Iterator[Any]) -> Iterator[str]:
    for seq, recorded_at, kind, app, actor, payload, p_hash, prev, r_hash in rows:
        # The payload is canonical JSON already; splicing it in avoids parsing and
        # re-encoding every record, and keeps its bytes exactly as hashed. Every other text
        # is escaped even where the format says hex: an export must stay readable JSON when
        # the table it reads has been tampered with.
        yield (
            f'{{"seq":{seq},"recorded_at":{_string(recorded_at)},"kind":{_string(kind)},'
            f'"application_id":{_string(app)},"actor":{_string(actor)},'
            f'"payload":{"null" if payload is None else payload},'
            f'"payload_hash":{_string(p_hash)},"prev_hash":{_string(prev)},'
            f'"record_hash":{_string(r_hash)}}}\n'
        )


def _string(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _csv(rows: Iterator[Any]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: Any) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(CHAINED_COLUMNS)
    for row in rows:
        yield line(["" if value is None else value for value in row])
