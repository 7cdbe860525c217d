"""The roll-up: decisions' cells added up per bucket, in the decisions' own transaction.

Each batch of decisions committed together (:class:`service.committer.GroupCommitter`) adds
its merged cells to the bucket of each grain that holds the moment of the commit (an
applicant's groups to the day's only), with one
upsert per cell (``INSERT … ON CONFLICT DO UPDATE``, on SQLite and PostgreSQL alike): a
decision is in the roll-up if and only if it is committed. Writers take the audit chain's
lock, so two never update the same row at once. Buckets older than their grain's retention
are deleted now and then by the writer that first writes a new bucket of that grain.

Reading sums the cells of a range of buckets of one grain: a window of the dashboard reads a
few thousand rows, whatever the number of decisions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from service.db import monitoring_cells as cells_table
from service.monitoring.cells import METRIC_GRAINS, Cells
from service.monitoring.windows import GRAINS, RETENTION, bucket_key

_COLUMNS = ("grain", "bucket", "metric", "key")


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(cells_table)
    return statement.on_conflict_do_update(
        index_elements=list(_COLUMNS),
        set_={"n": cells_table.c.n + statement.excluded.n,
              "total": cells_table.c.total + statement.excluded.total})


class Rollup:
    """Adds cells to their buckets and reads them back; one per worker."""

    def __init__(self) -> None:
        self._statements: dict[str, Any] = {}
        # The newest bucket of each grain this worker has written, to prune on a new one.
        self._latest: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, conn: Connection, cells: Cells, at: datetime) -> None:
        """Add ``cells`` to the buckets holding ``at``, inside the caller's transaction."""
        if not cells:
            return
        dialect = conn.dialect.name
        statement = self._statements.get(dialect)
        if statement is None:
            statement = self._statements.setdefault(dialect, _upsert(dialect))
        rows: list[dict[str, Any]] = []
        ordered = sorted(cells.items())
        for grain in GRAINS:
            bucket = bucket_key(at, grain)
            self._prune_if_new(conn, grain, bucket, at)
            rows.extend({"grain": grain, "bucket": bucket, "metric": metric, "key": key,
                         "n": int(n), "total": total}
                        for (metric, key), (n, total) in ordered
                        if grain in METRIC_GRAINS.get(metric, GRAINS))
        conn.execute(statement, rows)

    def _prune_if_new(self, conn: Connection, grain: str, bucket: str, at: datetime) -> None:
        keep = RETENTION[grain]
        with self._lock:
            if keep is None or self._latest.get(grain, "") >= bucket:
                return
            self._latest[grain] = bucket
        conn.execute(delete(cells_table).where(cells_table.c.grain == grain,
                                               cells_table.c.bucket < bucket_key(at - keep,
                                                                                 grain)))


def sums(conn: Connection, grain: str, first: str, last: str,
         metrics: Iterable[str] | None = None) -> dict[tuple[str, str], tuple[int, float]]:
    """Each cell's count and sum over the buckets ``first`` to ``last`` of ``grain``."""
    query = (select(cells_table.c.metric, cells_table.c.key, func.sum(cells_table.c.n),
                    func.sum(cells_table.c.total))
             .where(cells_table.c.grain == grain, cells_table.c.bucket >= first,
                    cells_table.c.bucket <= last)
             .group_by(cells_table.c.metric, cells_table.c.key))
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
    return found
