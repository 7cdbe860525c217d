"""SQLAlchemy Core tables of the audit trail, as the latest migration leaves them.

The DDL itself lives in :mod:`audit.migrations`; these objects only build queries. A test
compares both so that they cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, MetaData, String, Table, Text

__all__ = ["CHAINED_COLUMNS", "INDEX_COLUMNS", "audit_reason_codes", "audit_records", "metadata"]

metadata = MetaData()

# INTEGER on SQLite makes seq the rowid, so the table is stored in seq order.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("recorded_at", String(27), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("application_id", String(64)),
    Column("actor", String(128)),
    Column("payload", Text),
    Column("payload_hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("record_hash", String(64), nullable=False, unique=True),
    # Index data copied from the payload at append time; not part of any hash.
    Column("subject", String(64)),
    Column("outcome", String(32)),
    Column("model_version", String(64)),
)

audit_reason_codes = Table(
    "audit_reason_codes",
    metadata,
    Column("seq", _SEQ, ForeignKey("audit_records.seq"), primary_key=True),
    Column("code", String(64), primary_key=True),
)

CHAINED_COLUMNS = (
    "seq",
    "recorded_at",
    "kind",
    "application_id",
    "actor",
    "payload",
    "payload_hash",
    "prev_hash",
    "record_hash",
)
"""The columns of a record proper, in the order AuditRecord takes them."""

INDEX_COLUMNS = ("subject", "outcome", "model_version")
"""Columns extracted from the payload so that queries need not read payloads."""
