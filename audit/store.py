"""The audit store: append to, read, verify, export and purge one hash chain.

``AuditStore.from_url`` runs on a SQLite file (the default, under ``var/``) or PostgreSQL whose
schema is already in place: the store never changes the schema (the service's
``flashloan db upgrade`` does, with the migration lock of :mod:`audit.engine`). All writes go
through :meth:`AuditStore.writer`, one transaction holding the chain lock; the
only statement that changes a stored row is the retention purge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from audit.engine import create_audit_engine, lock_chain, prepare_engine, write_mode, writer_turn
from audit.errors import CommitOutcomeUnknown
from audit.export import export_lines
from audit.queries import batches, decode_cursor, encode_cursor, record_from_row, select_records
from audit.records import (
    GENESIS_HASH,
    MAX_SEQ,
    AuditPage,
    AuditQuery,
    AuditRecord,
    DocumentCheck,
    PurgeResult,
)
from audit.retention import purge_payloads
from audit.schema import CHAINED_COLUMNS, audit_records
from audit.verification import verify_chain
from audit.writer import ChainWriter

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.chains import ChainCheckpoints
    from audit.checkpoints import Checkpoint
    from audit.records import VerifyResult

__all__ = ["DEFAULT_RETENTION_YEARS", "MAX_PAGE", "AuditStore"]

DEFAULT_RETENTION_YEARS = 5
MAX_PAGE = 1000
_T = audit_records.c
_CHAINED = [_T[name] for name in CHAINED_COLUMNS]
_HEAD = select(_T.seq, _T.record_hash).order_by(_T.seq.desc()).limit(1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditStore:
    """One audit chain in one database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 2000,
        retention_years: int = DEFAULT_RETENTION_YEARS,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        self._engine = prepare_engine(engine)
        self.batch_size = batch_size
        self.retention_years = retention_years
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AuditStore:
        """Open the store at a database URL; its schema must be in place already."""
        engine = create_audit_engine(url)
        try:
            return cls(engine, **options)
        except BaseException:
            engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"AuditStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the store's database."""
        return self._engine

    def now(self) -> datetime:
        """Return the store's current time (UTC)."""
        return self._clock()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def writer(self) -> Iterator[ChainWriter]:
        """Open a write transaction holding the chain lock; commit on exit, roll back on error.

        An error raised by the COMMIT itself (the connection lost during it, say) leaves the
        outcome unknown — the server may have made it durable — and is raised as
        :class:`CommitOutcomeUnknown`; any error before it means nothing was written.
        """
        with writer_turn(self._engine), self._engine.connect() as conn:
            write_mode(conn)
            with conn.begin() as transaction:
                lock_chain(conn)
                head = conn.execute(_HEAD).first()
                seq, record_hash = head if head is not None else (0, GENESIS_HASH)
                yield ChainWriter(conn, int(seq), record_hash, self._clock)
                try:
                    transaction.commit()
                except Exception as exc:
                    raise CommitOutcomeUnknown.from_commit_error(exc) from exc

    def append(self, kind: str, payload: Mapping[str, Any], **fields: Any) -> AuditRecord:
        """Append one record in a transaction of its own and return it."""
        with self.writer() as writer:
            return writer.append(kind, payload, **fields)

    # -- reading ---------------------------------------------------------------------------

    def get(self, seq: int) -> AuditRecord | None:
        """Return record ``seq``, or None if there is none."""
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(select(*_CHAINED).where(_T.seq == seq)).first()
        return None if row is None else record_from_row(row)

    def head(self) -> AuditRecord | None:
        """Return the last record of the chain, or None if it is empty."""
        with self._engine.connect() as conn:
            row = conn.execute(select(*_CHAINED).order_by(_T.seq.desc()).limit(1)).first()
        return None if row is None else record_from_row(row)

    def query(
        self,
        query: AuditQuery | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        newest_first: bool = False,
    ) -> AuditPage:
        """Return one page of the records matching ``query``, in seq order."""
        query = query or AuditQuery()
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE}; got {limit!r}")
        after = None if cursor is None else decode_cursor(cursor, query, newest_first)
        statement = select_records(query, after=after, limit=limit + 1, newest_first=newest_first)
        with self._engine.connect() as conn:
            rows = conn.execute(statement).all()
        items = tuple(record_from_row(row) for row in rows[:limit])
        more = len(rows) > limit
        next_cursor = encode_cursor(query, items[-1].seq, newest_first) if more else None
        return AuditPage(items=items, next_cursor=next_cursor)

    def iter_records(self, query: AuditQuery | None = None) -> Iterator[AuditRecord]:
        """Yield every record matching ``query`` in seq order, ``batch_size`` rows at a time."""
        for rows in batches(self._engine, query or AuditQuery(), self.batch_size):
            for row in rows:
                yield record_from_row(row)

    def export(self, fmt: str, query: AuditQuery | None = None) -> Iterator[str]:
        """Stream the records matching ``query`` as lines of ``jsonl`` or ``csv``."""
        return export_lines(self._engine, fmt, query or AuditQuery(), self.batch_size)

    def verify(
        self,
        start_seq: int | None = None,
        end_seq: int | None = None,
        checkpoints: Sequence[Checkpoint] = (),
        *,
        public_key: Any = None,
    ) -> VerifyResult:
        """Walk the chain in constant memory and report the first broken link.

        ``checkpoints`` must each still be extended by the chain: their signatures must hold
        (under ``public_key`` when given) and the record at their seq must carry their hash.
        A range given that holds no record (``end_seq`` before ``start_seq``, or
        ``start_seq`` past the head) raises :class:`~audit.errors.InvalidRange`.
        """
        for name, value in (("start_seq", start_seq), ("end_seq", end_seq)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        return verify_chain(
            self._engine,
            batch_size=self.batch_size,
            start_seq=start_seq,
            end_seq=end_seq,
            checkpoints=checkpoints,
            public_key=public_key,
        )

    def check_documents(
        self, documents: Iterable[tuple[str, str]], *, field: str, what: str = "document"
    ) -> DocumentCheck:
        """Check ``(application_id, text)`` pairs against the SHA-256 under ``field`` in the
        latest record of each application that states one (see :mod:`audit.documents`)."""
        from audit.documents import check_documents

        return check_documents(self._engine, documents, field=field, what=what,
                               batch_size=self.batch_size)

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_due(
        self, *, every_records: int | None = None, every_s: float | None = None
    ) -> bool:
        """Return whether a checkpoint is due, without taking any lock."""
        from audit.ledger import checkpoint_due

        return checkpoint_due(self._engine, self.now(), every_records=every_records,
                              every_s=every_s)

    def take_checkpoint(
        self,
        key: Ed25519PrivateKey,
        *,
        every_records: int | None = None,
        every_s: float | None = None,
    ) -> Checkpoint | None:
        """Sign the head into the checkpoint ledger if one is due (once, whoever else asks)."""
        from audit.ledger import take_checkpoint

        return take_checkpoint(self, key, every_records=every_records, every_s=every_s)

    def recorded_checkpoints(self) -> list[Checkpoint]:
        """Return the checkpoints in the ledger, by seq."""
        from audit.ledger import recorded_checkpoints

        return recorded_checkpoints(self._engine)

    def chain_id(self) -> str | None:
        """Return the chain's name, the hash of record 1 (None while it is empty)."""
        from audit.chains import chain_id

        with self._engine.connect() as conn:
            return chain_id(conn)

    def sort_by_chain(self, found: Iterable[Checkpoint]) -> ChainCheckpoints:
        """Sort checkpoints found where other chains' may be too into this chain's and
        theirs (see :mod:`audit.chains`)."""
        from audit.chains import sort_by_chain

        return sort_by_chain(self._engine, found)

    def signing_key(self, setting: str | None, var_dir: Path | str, *, production: bool,
                    record: bool = True) -> Ed25519PrivateKey:
        """Return the key to sign this chain's checkpoints with: the one configured, or in
        development the one key recorded for this database (see :mod:`audit.signing_keys`)."""
        from audit.signing_keys import database_signing_key

        return database_signing_key(self, setting, var_dir, production, record=record)

    # -- retention -------------------------------------------------------------------------

    def purge(
        self, before: datetime, actor: str, *, retention_years: int | None = None
    ) -> PurgeResult:
        """Set to NULL the payloads recorded before ``before``; refuse any still retained."""
        years = self.retention_years if retention_years is None else retention_years
        return purge_payloads(self, before, actor, years)
