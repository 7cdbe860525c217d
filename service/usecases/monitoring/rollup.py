"""The roll-up: decisions' cells added up per bucket, in the decisions' own transaction.

Each batch of decisions committed together (:class:`service.persistence.committer.GroupCommitter`)
adds
its merged cells to the five-minute bucket that holds the moment of the commit (an
applicant's groups to the day's bucket, and no other: :data:`~service.usecases.monitoring.cells.
METRIC_GRAINS`), with one upsert per cell (``INSERT … ON CONFLICT DO UPDATE``, on SQLite and
PostgreSQL alike): a decision is in the roll-up if and only if it is committed.

The hourly and daily buckets are filled by compaction: the first write into a new
five-minute bucket adds every five-minute bucket before it that is not yet compacted into
its hour and its day, in one ``INSERT … SELECT … GROUP BY``, and moves the mark
``compacted`` (table ``monitoring_marks``) to it. A decision thus writes one row per cell,
not three, and the compaction, about once in five minutes, writes a few hundred. Reading an
hourly or daily range adds the five-minute buckets from the mark on (the "tail") to the
compacted ones, so every read counts every committed decision exactly once. Writers take the
audit chain's lock, so two never write the same rows, nor compact, at once.

Buckets older than their grain's retention are deleted by the writer that compacts (five-
minute ones only once compacted).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.persistence.tables import monitoring_cells as cells_table
from service.persistence.tables import monitoring_marks as marks
from service.usecases.monitoring.cells import METRIC_GRAINS, Cells, merge
from service.usecases.monitoring.windows import GRAINS, RETENTION, bucket_key

_COLUMNS = ("grain", "bucket", "metric", "key")
FINE = "5m"
COMPACTED = "compacted"
# The length of each coarser grain's bucket key: a five-minute key cut to it is its bucket.
_KEY_LENGTH = {"hour": len("2026-11-29T10"), "day": len("2026-11-29")}
Sums = dict[tuple[str, str], tuple[int, float]]


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _on_conflict_add(statement: Any) -> Any:
    return statement.on_conflict_do_update(
        index_elements=list(_COLUMNS),
        set_={"n": cells_table.c.n + statement.excluded.n,
              "total": cells_table.c.total + statement.excluded.total})


def _compaction(dialect: str, grain: str) -> Any:
    """Add the five-minute buckets from ``:since`` up to (not including) ``:until`` into
    their buckets of ``grain``."""
    coarse = func.substr(cells_table.c.bucket, 1, _KEY_LENGTH[grain])
    rows = (select(literal(grain), coarse, cells_table.c.metric, cells_table.c.key,
                   func.sum(cells_table.c.n), func.sum(cells_table.c.total))
            .where(cells_table.c.grain == FINE, cells_table.c.bucket >= bindparam("since"),
                   cells_table.c.bucket < bindparam("until"))
            .group_by(coarse, cells_table.c.metric, cells_table.c.key))
    return _on_conflict_add(_insert(dialect)(cells_table).from_select(
        [*_COLUMNS, "n", "total"], rows))


class Rollup:
    """Adds cells to their buckets, compacts, prunes; one per worker."""

    def __init__(self) -> None:
        self._statements: dict[tuple[str, str], Any] = {}
        # The five-minute bucket this worker wrote last: a new one calls for a compaction.
        self._latest = ""
        self._lock = threading.Lock()

    def _statement(self, dialect: str, name: str) -> Any:
        statement = self._statements.get((dialect, name))
        if statement is None:
            statement = (_on_conflict_add(_insert(dialect)(cells_table)) if name == "upsert"
                         else _compaction(dialect, name))
            self._statements[(dialect, name)] = statement
        return statement

    def add_batch(self, conn: Connection, batch: Sequence[Cells]) -> None:
        """Add up the cells of a batch of decisions committed together and add them to the
        buckets holding now, inside the batch's transaction (the group committer's
        ``after_batch``)."""
        merged: Cells = {}
        for cells in batch:
            merge(merged, cells)
        self.add(conn, merged, datetime.now(UTC))

    def add(self, conn: Connection, cells: Cells, at: datetime) -> None:
        """Add ``cells`` to the buckets holding ``at``, inside the caller's transaction."""
        if not cells:
            return
        dialect = conn.dialect.name
        fine = bucket_key(at, FINE)
        mark = compacted_mark(conn)
        # A bucket already compacted (a clock behind another host's): into every grain.
        direct = mark is not None and mark > fine
        with self._lock:
            new = fine > self._latest
            if new:
                self._latest = fine
        if new and not direct:
            self._compact(conn, dialect, mark, fine, at)
        grains = tuple(GRAINS) if direct else (FINE,)
        rows = [{"grain": grain, "bucket": bucket_key(at, grain), "metric": metric, "key": key,
                 "n": int(n), "total": total}
                for (metric, key), (n, total) in sorted(cells.items())
                for grain in METRIC_GRAINS.get(metric, grains)]
        conn.execute(self._statement(dialect, "upsert"), rows)

    def _compact(self, conn: Connection, dialect: str, mark: str | None, fine: str,
                 at: datetime) -> None:
        """Compact the five-minute buckets before ``fine`` not yet compacted; prune."""
        since = mark or ""
        if since < fine:
            for grain in _KEY_LENGTH:
                conn.execute(self._statement(dialect, grain), {"since": since, "until": fine})
            if mark is None:
                conn.execute(_insert(dialect)(marks).values(name=COMPACTED, bucket=fine))
            else:
                conn.execute(update(marks).where(marks.c.name == COMPACTED).values(bucket=fine))
        for grain, keep in RETENTION.items():
            if keep is None:
                continue
            oldest = bucket_key(at - keep, grain)
            if grain == FINE:
                oldest = min(oldest, fine)
            conn.execute(delete(cells_table).where(cells_table.c.grain == grain,
                                                   cells_table.c.bucket < oldest))


def compacted_mark(conn: Connection) -> str | None:
    """The first five-minute bucket not yet compacted, or None before the first compaction."""
    return conn.execute(select(marks.c.bucket).where(marks.c.name == COMPACTED)).scalar()


def _tail(conn: Connection, grain: str) -> str | None:
    """For an hourly or daily read, the first five-minute bucket to add to it; None for a
    five-minute read."""
    if grain == FINE:
        return None
    return compacted_mark(conn) or ""


def sums(conn: Connection, grain: str, first: str, last: str,
         metrics: Iterable[str] | None = None) -> Sums:
    """Each cell's count and sum over the buckets ``first`` to ``last`` of ``grain``."""
    found = _summed(conn, metrics, cells_table.c.grain == grain,
                    cells_table.c.bucket >= first, cells_table.c.bucket <= last)
    since = _tail(conn, grain)
    if since is not None:
        coarse = func.substr(cells_table.c.bucket, 1, _KEY_LENGTH[grain])
        tail = _summed(conn, metrics, cells_table.c.grain == FINE,
                       cells_table.c.bucket >= since, cells_table.c.bucket >= first,
                       coarse <= last)
        for cell, (n, total) in tail.items():
            had = found.get(cell, (0, 0.0))
            found[cell] = (had[0] + n, had[1] + total)
    return found


def _summed(conn: Connection, metrics: Iterable[str] | None, *where: Any) -> Sums:
    query = (select(cells_table.c.metric, cells_table.c.key, func.sum(cells_table.c.n),
                    func.sum(cells_table.c.total))
             .where(*where).group_by(cells_table.c.metric, cells_table.c.key))
    if metrics is not None:
        query = query.where(cells_table.c.metric.in_(list(metrics)))
    return {(metric, key): (int(n), float(total or 0.0))
            for metric, key, n, total in conn.execute(query)}


def series(conn: Connection, grain: str, first: str, last: str,
           metric: str) -> dict[str, dict[str, tuple[int, float]]]:
    """One metric's cells by bucket, over the buckets ``first`` to ``last`` of ``grain``."""
    query = (select(cells_table.c.bucket, cells_table.c.key, cells_table.c.n,
                    cells_table.c.total)
             .where(cells_table.c.grain == grain, cells_table.c.bucket >= first,
                    cells_table.c.bucket <= last, cells_table.c.metric == metric))
    found: dict[str, dict[str, tuple[int, float]]] = {}
    for bucket, key, n, total in conn.execute(query):
        found.setdefault(bucket, {})[key] = (int(n), float(total or 0.0))
    since = _tail(conn, grain)
    if since is not None:
        coarse = func.substr(cells_table.c.bucket, 1, _KEY_LENGTH[grain])
        tail = (select(coarse, cells_table.c.key, func.sum(cells_table.c.n),
                       func.sum(cells_table.c.total))
                .where(cells_table.c.grain == FINE, cells_table.c.bucket >= since,
                       cells_table.c.bucket >= first, coarse <= last,
                       cells_table.c.metric == metric)
                .group_by(coarse, cells_table.c.key))
        for bucket, key, n, total in conn.execute(tail):
            had = found.setdefault(bucket, {}).get(key, (0, 0.0))
            found[bucket][key] = (had[0] + int(n), had[1] + float(total or 0.0))
    return found
