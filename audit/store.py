"""The audit store: append to, read, verify, export and purge one hash chain.

``AuditStore.from_url`` runs on a SQLite file (the default, under ``var/``) or PostgreSQL.
All writes go through :meth:`AuditStore.writer`, one transaction holding the chain lock; the
only statement that changes a stored row is the retention purge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from audit.engine import create_audit_engine, lock_chain, prepare_engine, write_mode, writer_turn
from audit.export import export_lines
from audit.migrations import apply_migrations
from audit.queries import batches, decode_cursor, encode_cursor, record_from_row, select_records
from audit.records import GENESIS_HASH, MAX_SEQ, AuditPage, AuditQuery, AuditRecord, PurgeResult
from audit.retention import purge_payloads
from audit.schema import CHAINED_COLUMNS, audit_records
from audit.verification import verify_chain
from audit.writer import ChainWriter

if TYPE_CHECKING:
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
    def from_url(cls, url: str, *, create: bool = True, **options: Any) -> AuditStore:
        """Open the store at a database URL and, unless ``create`` is False, migrate it."""
        engine = create_audit_engine(url)
        store = cls(engine, **options)
        if create:
            try:
                store.create_schema()
            except BaseException:
                engine.dispose()
                raise
        return store

    def __repr__(self) -> str:
        return f"AuditStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the store's database."""
        return self._engine

    def now(self) -> datetime:
        """Return the store's current time (UTC)."""
        return self._clock()

    def create_schema(self) -> list[int]:
        """Create or upgrade the tables; safe to call from many workers at once."""
        return apply_migrations(self._engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def writer(self) -> Iterator[ChainWriter]:
        """Open a write transaction holding the chain lock; commit on exit, roll back on error."""
        with writer_turn(self._engine), self._engine.connect() as conn:
            write_mode(conn)
            with conn.begin():
                lock_chain(conn)
                head = conn.execute(_HEAD).first()
                seq, record_hash = head if head is not None else (0, GENESIS_HASH)
                yield ChainWriter(conn, int(seq), record_hash, self._clock)

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

    # -- retention -------------------------------------------------------------------------

    def purge(
        self, before: datetime, actor: str, *, retention_years: int | None = None
    ) -> PurgeResult:
        """Set to NULL the payloads recorded before ``before``; refuse any still retained."""
        years = self.retention_years if retention_years is None else retention_years
        return purge_payloads(self, before, actor, years)
