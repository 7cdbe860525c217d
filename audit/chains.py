"""Which chain a checkpoint belongs to: the chain is named by the hash of its first record.

The name is fixed once record 1 is written, is the same in every copy of the database, and
differs between chains; a checkpoint signs it with the head. So checkpoints of several
databases kept in one folder (two test runs, a backup of another database restored beside
this one) can be told apart. A checkpoint that names this chain is held to it, whatever it
says. One signed before checkpoints named their chain is this chain's when the record at its
seq has its hash; one that this chain neither reaches nor agrees with cannot be told from
another chain's and is sorted with them. What becomes of the others is the caller's to
decide: a chain rewritten from record 1 has a new name too, so where only one chain can be
(a production deployment), another chain's checkpoint signed by its key is a failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select

from audit.schema import audit_records

if TYPE_CHECKING:
    from audit.checkpoints import Checkpoint

__all__ = ["ChainCheckpoints", "chain_id", "sort_by_chain"]

_T = audit_records.c


@dataclass(frozen=True, slots=True)
class ChainCheckpoints:
    """Checkpoints found together, sorted into this chain's and those of other chains; this
    chain's name (None while it is empty)."""

    ours: list[Checkpoint]
    others: list[Checkpoint]
    chain_id: str | None = None


def chain_id(conn: Connection) -> str | None:
    """Return the chain's name, the hash of record 1; None while the chain is empty."""
    return conn.execute(select(_T.record_hash).where(_T.seq == 1)).scalar_one_or_none()


def sort_by_chain(engine: Engine, found: Iterable[Checkpoint]) -> ChainCheckpoints:
    """Sort checkpoints found in a folder that other chains may share into ours and theirs."""
    ours: list[Checkpoint] = []
    others: list[Checkpoint] = []
    with engine.connect() as conn:
        this = chain_id(conn)
        for checkpoint in found:
            if checkpoint.chain_id is not None:
                mine = checkpoint.chain_id == this
            else:
                stored = conn.execute(
                    select(_T.record_hash).where(_T.seq == checkpoint.seq)
                ).scalar_one_or_none()
                mine = stored == checkpoint.record_hash
            (ours if mine else others).append(checkpoint)
    return ChainCheckpoints(ours, others, this)
