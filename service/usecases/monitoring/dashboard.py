"""The live book over a window: volumes and rates, strategies side by side, grades, score and
PD against training, sources, latency, reviews, decline reasons, drift and fairness.

Everything but the reviews is read from the roll-up (:mod:`service.usecases.monitoring.rollup`): one
grouped read of the window's buckets and one of its series, so a page costs the same with a
thousand decisions or a million. Reviews are read from their own table by its indexes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from audit import AuditStore
from scoring.governance.drift import DriftReference
from scoring.online.model import read_card
from service.domain.encoding import now_text, time_of
from service.persistence.tables import reviews
from service.usecases.monitoring.cells import bin_bounds
from service.usecases.monitoring.collector import MonitoringCollector
from service.usecases.monitoring.fairness import FAIRNESS_WINDOWS, fairness_of
from service.usecases.monitoring.live_drift import THRESHOLDS, drift_of
from service.usecases.monitoring.rollup import series, sums
from service.usecases.monitoring.strategies import strategies_of
from service.usecases.monitoring.windows import Window, bucket_label

OUTCOMES = ("approved", "declined", "deferred")
RATES = {"approved": "approval_rate", "declined": "decline_rate", "deferred": "deferral_rate"}
# How many decline reasons the dashboard lists.
TOP_REASONS = 10
Sums = Mapping[tuple[str, str], tuple[int, float]]


# A model's drift reference, or None and why there is none.
Found = tuple[DriftReference | None, str | None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _no_section(version: str) -> str:
    return (f"the card of model {version} holds no training distributions: retrain it, or run "
            f"`flashloan model monitoring {version}` and restart the service")


def quantile(counts: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile of a latency histogram (bin → count), interpolated in its bin."""
    total = sum(counts.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for index in sorted(counts):
        n = counts[index]
        if seen + n >= rank:
            low, high = bin_bounds(index)
            return low + (high - low) * ((rank - seen) / n if n else 0.0)
        seen += n
    return bin_bounds(max(counts))[1]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class Monitoring:
    """Reads the live book; one per worker (it keeps the drift references it has read)."""

    def __init__(self, store: AuditStore, *, references: Mapping[str, DriftReference | None],
                 labels: Mapping[str, str], reason_texts: Mapping[str, Mapping[str, str]],
                 model_search: tuple[Path, ...] = (),
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = store
        self._references: dict[str, Found] = {
            version: (reference, None if reference is not None else _no_section(version))
            for version, reference in references.items()}
        self.labels = labels
        self.reason_texts = reason_texts
        self.model_search = model_search
        self.clock = clock

    def window(self, name: str, *, by: str | None = None,
               end: datetime | None = None) -> Window:
        return Window.of(name, end=end or self.clock(), by=by)

    def reference(self, version: str) -> Found:
        """The drift reference of a model version, or why there is none: of a loaded model,
        or read from its card (a model that decided before a switch), once per worker."""
        if version not in self._references:
            self._references[version] = self._read_reference(version)
        return self._references[version]

    def _read_reference(self, version: str) -> Found:
        try:
            card = read_card(version, self.model_search)
        except OSError:
            return None, f"the card of model {version} is not among the models this service reads"
        except ValueError:
            return None, f"the card of model {version} is not valid JSON"
        try:
            reference = DriftReference.from_card(card)
        except (KeyError, TypeError, ValueError) as exc:
            return None, (f"the training distributions in the card of model {version} cannot "
                          f"be read ({type(exc).__name__}: {exc})")
        return reference, None if reference is not None else _no_section(version)

    def collector(self) -> MonitoringCollector:
        """Drift as Prometheus gauges, read at scrape time."""
        return MonitoringCollector(self)

    def sums(self, window: Window) -> Sums:
        """Every cell of the roll-up summed over ``window``."""
        with self.store.engine.connect() as conn:
            return sums(conn, window.grain, window.first_bucket(), window.last_bucket())

    def _snapshot(self) -> Any:
        """A connection whose reads all see the same committed decisions: one transaction
        (a snapshot in SQLite's WAL mode), repeatable read on PostgreSQL."""
        conn = self.store.engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return conn

    # -- the three reads the API serves ------------------------------------------------------

    def drift(self, window: Window, found: Sums | None = None) -> dict[str, Any]:
        found = self.sums(window) if found is None else found
        return {"window": window.describe(), "thresholds": THRESHOLDS,
                "models": drift_of(found, self.reference, self.labels)}

    def fairness(self, window: Window, found: Sums | None = None) -> dict[str, Any]:
        """Fairness over a window counted by day (:data:`FAIRNESS_WINDOWS`)."""
        if window.kind.name not in FAIRNESS_WINDOWS:
            raise ValueError(f"fairness is counted by day: window must be one of "
                             f"{', '.join(FAIRNESS_WINDOWS)}; got {window.kind.name!r}")
        found = self.sums(window) if found is None else found
        return {"window": window.describe(), **fairness_of(found)}

    def dashboard(self, window: Window, *, with_fairness: bool) -> dict[str, Any]:
        """Every panel of the dashboard over ``window`` (fairness only for the roles that
        read it, and only over 7 or 30 days: it is counted by day)."""
        with self._snapshot() as conn:
            found = sums(conn, window.grain, window.first_bucket(), window.last_bucket())
            by_bucket = series(conn, window.by, window.first_bucket(window.by),
                               window.last_bucket(window.by), "outcome")
            reviews_now = self._reviews(conn, window)
        view: dict[str, Any] = {"window": window.describe(), "volume": self._volume(found),
                "series": self._series(window, by_bucket),
                "strategies": strategies_of(found), "grades": self._grades(found),
                "sources": self._sources(found), "latency": self._latency(found),
                "reviews": reviews_now, "reasons": self._reasons(found),
                "drift": self.drift(window, found)}
        if with_fairness and window.kind.name in FAIRNESS_WINDOWS:
            view["fairness"] = self.fairness(window, found)
        elif with_fairness:
            view["fairness"] = None
        return view

    # -- panels ------------------------------------------------------------------------------

    @staticmethod
    def _volume(found: Sums) -> dict[str, Any]:
        counts = {o: found.get(("outcome", o), (0, 0.0))[0] for o in OUTCOMES}
        applications = sum(counts.values())
        return {"applications": applications, **counts,
                **{RATES[o]: _rate(counts[o], applications) for o in OUTCOMES},
                "amount_approved": found.get(("outcome", "approved"), (0, 0.0))[1]}

    @staticmethod
    def _series(window: Window, by_bucket: Mapping[str, Mapping[str, tuple[int, float]]]
                ) -> list[dict[str, Any]]:
        points = []
        for bucket in window.series_buckets():
            cells = by_bucket.get(bucket, {})
            counts = {o: cells.get(o, (0, 0.0))[0] for o in OUTCOMES}
            total = sum(counts.values())
            points.append({"bucket": bucket, "label": bucket_label(bucket, window.by),
                           **counts, "applications": total,
                           "deferral_rate": _rate(counts["deferred"], total)})
        return points

    @staticmethod
    def _grades(found: Sums) -> list[dict[str, Any]]:
        grades = {key: (n, total) for (metric, key), (n, total) in found.items()
                  if metric == "grade"}
        count = sum(n for n, _ in grades.values())
        return [{"grade": g, "count": n, "share": _rate(n, count), "amount": total}
                for g, (n, total) in sorted(grades.items())]

    @staticmethod
    def _sources(found: Sums) -> list[dict[str, Any]]:
        statuses: dict[str, dict[str, int]] = defaultdict(dict)
        latency: dict[str, dict[int, int]] = defaultdict(dict)
        for (metric, key), (n, _) in found.items():
            if metric == "source":
                scope, status = key.split("|")
                statuses[scope][status] = n
            elif metric == "source_ms":
                scope, index = key.split("|")
                latency[scope][int(index)] = n
        rows = []
        for scope in sorted(statuses):
            calls = sum(statuses[scope].values())
            rows.append({"source": scope, "calls": calls,
                         "availability": _rate(statuses[scope].get("ok", 0), calls),
                         "errors": {s: n for s, n in sorted(statuses[scope].items())
                                    if s != "ok"},
                         "breaker_openings": found.get(("breaker", scope), (0, 0.0))[0],
                         "p50_ms": quantile(latency[scope], 0.5),
                         "p99_ms": quantile(latency[scope], 0.99)})
        return rows

    @staticmethod
    def _latency(found: Sums) -> dict[str, Any]:
        whole = {int(key): n for (metric, key), (n, _) in found.items() if metric == "latency"}
        steps: dict[str, dict[int, int]] = defaultdict(dict)
        step_ms: dict[str, float] = defaultdict(float)
        for (metric, key), (n, total) in found.items():
            if metric == "step":
                step, index = key.split("|")
                steps[step][int(index)] = n
                step_ms[step] += total
        rows: list[dict[str, Any]] = [{"step": step, "count": sum(bins.values()),
                 "mean_ms": step_ms[step] / sum(bins.values()),
                 "p50_ms": quantile(bins, 0.5), "p99_ms": quantile(bins, 0.99)}
                for step, bins in steps.items()]
        rows.sort(key=lambda r: -r["mean_ms"])
        return {"decisions": sum(whole.values()), "p50_ms": quantile(whole, 0.5),
                "p99_ms": quantile(whole, 0.99), "steps": rows,
                "slowest_step": rows[0]["step"] if rows else None}

    def _reasons(self, found: Sums) -> list[dict[str, Any]]:
        declined = found.get(("outcome", "declined"), (0, 0.0))[0]
        codes = sorted(((key, n) for (metric, key), (n, _) in found.items()
                        if metric == "reason"), key=lambda item: (-item[1], item[0]))
        return [{"code": code, "text_en": self.reason_texts.get(code, {}).get("text_en", code),
                 "text_zh": self.reason_texts.get(code, {}).get("text_zh", ""),
                 "count": n, "share_of_declines": _rate(n, declined)}
                for code, n in codes[:TOP_REASONS]]

    @staticmethod
    def _reviews(conn: Connection, window: Window) -> dict[str, Any]:
        """The review backlog now, and the reviews resolved in the window."""
        start, end = now_text(window.start), now_text(window.end)
        backlog, oldest = conn.execute(
            select(func.count(), func.min(reviews.c.created_at))
            .where(reviews.c.state == "open")).one()
        resolved: dict[str, int] = {outcome: int(n) for outcome, n in conn.execute(
            select(reviews.c.outcome, func.count())
            .where(reviews.c.resolved_at >= start, reviews.c.resolved_at <= end)
            .group_by(reviews.c.outcome))}
        count = sum(resolved.values())
        changed = resolved.get("overturned", 0) + resolved.get("amended", 0)
        opened = time_of(oldest)
        age = (window.end - opened).total_seconds() if opened is not None else None
        return {"open": int(backlog), "oldest_open_at": oldest, "oldest_age_s": age,
                "resolved": count, "by_outcome": resolved,
                "overturn_rate": _rate(resolved.get("overturned", 0), count),
                "changed_rate": _rate(changed, count)}

