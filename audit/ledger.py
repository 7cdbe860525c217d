"""The ledger of checkpoints: signed checkpoints taken on a schedule, once for all writers.

A checkpoint is due when the chain has grown by ``every_records`` since the last one, or when
its oldest record not yet signed is ``every_s`` seconds old. Any number of workers and hosts
may ask at once: the decision and the checkpoint's row are made in one transaction holding
the chain lock, so the first one takes it and the others find it taken. The rows let every
worker see the last checkpoint wherever it was taken, and verify read them all; the signed
files kept out of the database's reach stay the stronger evidence. The ledger is this
database's own: its checkpoints are always held to its chain, whichever chain they name.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, select

from audit.canonical import format_time, parse_time
from audit.chains import chain_id
from audit.checkpoints import Checkpoint, checkpoint_message, public_key_hex
from audit.schema import audit_checkpoints, audit_records

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.chain_access import ChainAccess

__all__ = ["checkpoint_due", "recorded_checkpoints", "take_checkpoint"]

_T = audit_records.c
_L = audit_checkpoints.c
_HEAD = select(func.coalesce(func.max(_T.seq), 0))
_LAST = select(func.coalesce(func.max(_L.seq), 0))


def checkpoint_due(
    engine: Engine, now: datetime, *, every_records: int | None, every_s: float | None
) -> bool:
    """Return whether a checkpoint is due, reading without any lock (a cheap first look)."""
    with engine.connect() as conn:
        head = int(conn.execute(_HEAD).scalar_one())
        return _due(conn, head, now, every_records, every_s)


def take_checkpoint(
    store: ChainAccess,
    key: Ed25519PrivateKey,
    *,
    every_records: int | None = None,
    every_s: float | None = None,
) -> Checkpoint | None:
    """Sign the chain head and add it to the ledger if a checkpoint is due; else None.

    With neither threshold, one is due whenever the chain has grown since the last.
    """
    with store.writer() as writer:
        conn = writer.connection
        head = writer.head_seq
        now = store.now()
        if not _due(conn, head, now, every_records, every_s):
            return None
        time = format_time(now, what="now")
        named = chain_id(conn)
        signature = key.sign(checkpoint_message(head, writer.head_hash, time, named)).hex()
        signed = Checkpoint(head, writer.head_hash, time, public_key_hex(key), signature, named)
        conn.execute(audit_checkpoints.insert().values(
            seq=signed.seq, record_hash=signed.record_hash, time=signed.time,
            public_key=signed.public_key, signature=signed.signature,
            chain_id=signed.chain_id))
    return signed


def recorded_checkpoints(engine: Engine) -> list[Checkpoint]:
    """Return every checkpoint in the ledger, by seq."""
    statement = select(_L.seq, _L.record_hash, _L.time, _L.public_key, _L.signature,
                       _L.chain_id).order_by(_L.seq)
    with engine.connect() as conn:
        return [Checkpoint(*row) for row in conn.execute(statement)]


def _due(
    conn: Connection,
    head: int,
    now: datetime,
    every_records: int | None,
    every_s: float | None,
) -> bool:
    last = int(conn.execute(_LAST).scalar_one())
    if head <= last:
        return False
    if every_records is None and every_s is None:
        return True
    if every_records is not None and head - last >= every_records:
        return True
    if every_s is None:
        return False
    oldest = conn.execute(
        select(_T.recorded_at).where(_T.seq > last).order_by(_T.seq).limit(1)
    ).scalar_one_or_none()
    return oldest is not None and (now - parse_time(oldest)).total_seconds() >= every_s
