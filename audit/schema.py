"""SQLAlchemy Core tables of the audit trail, as the latest migration leaves them.

These objects build queries; the schema itself is changed only by the Alembic revisions
under ``service/persistence/migrations/versions/`` (``flashloan db upgrade``). They declare every
column,
constraint and index, so that a test can compare them with a migrated database and the two
cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "CHAINED_COLUMNS",
    "INDEX_COLUMNS",
    "audit_checkpoints",
    "audit_development_key",
    "audit_reason_codes",
    "audit_records",
    "metadata",
]

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
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    # Index data copied from the payload at append time; not part of any hash.
    Column("subject", String(64)),
    Column("outcome", String(32)),
    Column("model_version", String(64)),
    CheckConstraint("seq >= 1", name="ck_audit_records_seq"),
    UniqueConstraint("prev_hash", name="uq_audit_records_prev_hash"),
    UniqueConstraint("record_hash", name="uq_audit_records_record_hash"),
    Index("ix_audit_records_recorded_at", "recorded_at"),
    Index("ix_audit_records_kind", "kind", "seq"),
)

# Keyset pagination filters on one column and orders by seq, hence (column, seq); columns
# that most records leave empty get partial indexes.
for _column in ("application_id", "actor", "subject", "outcome", "model_version"):
    _present = audit_records.c[_column].is_not(None)
    Index(
        f"ix_audit_records_{_column}",
        audit_records.c[_column],
        audit_records.c.seq,
        sqlite_where=_present,
        postgresql_where=_present,
    )

audit_reason_codes = Table(
    "audit_reason_codes",
    metadata,
    Column("seq", _SEQ, ForeignKey("audit_records.seq"), primary_key=True, autoincrement=False),
    Column("code", String(64), primary_key=True),
    Index("ix_audit_reason_codes_code", "code", "seq"),
    sqlite_with_rowid=False,
)

# The ledger of the checkpoints the service took: which worker takes the next one, and when,
# is decided here, under the chain lock. The signed files kept apart remain the evidence.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("record_hash", String(64), nullable=False),
    Column("time", String(27), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    # The hash of record 1, which the signature covers; NULL for checkpoints signed before
    # checkpoints named their chain.
    Column("chain_id", String(64)),
)

# Outside production, with no signing key configured, the one key every instance of this
# database signs its checkpoints with: recorded once, by the first instance that needs it.
audit_development_key = Table(
    "audit_development_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seed", String(64), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("recorded_at", String(27), nullable=False),
    CheckConstraint("id = 1", name="ck_audit_development_key_one"),
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
