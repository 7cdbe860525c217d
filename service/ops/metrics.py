"""Prometheus metrics, correct across gunicorn workers (multiprocess mode when configured)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as mp
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from datasources.outcome import SourceOutcome

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# The points scale (600 points at odds 50:1, 20 points to double them) puts a PD of 0.5 near
# 490 points and one of 0.001 near 690; 300 to 900 leaves room for another card's scaling.
_SCORE_BUCKETS = tuple(float(points) for points in range(300, 901, 25))
_PD_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
# Gauges computed when scraped, by collectors given to ``Metrics.add_collector``: name and
# label names. Dashboards and alerting rules may use these besides the registry's own metrics.
COLLECTED_GAUGES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "flashloan_drift_psi": ("model_version", "variable"),
})


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def clear_metric_files(folder: Path) -> None:
    """Make ``folder`` ready for a new start of the workers: create it, and remove the
    metric files an earlier start left there (prometheus_client's ``*.db``), nothing else.

    The folder is the operator's to name, and may hold other files: it is never removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


class Metrics:
    """The service's metrics; one instance per worker, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter("flashloan_decisions_total", "Decisions by outcome",
                                 ["outcome"], registry=r)
        self.step_seconds = Histogram("flashloan_step_seconds", "Time per decision step",
                                      ["step"], buckets=_BUCKETS, registry=r)
        self.source_seconds = Histogram("flashloan_source_seconds", "Source call latency",
                                        ["source", "status"], buckets=_BUCKETS, registry=r)
        self.source_failures = Counter("flashloan_source_failures_total",
                                       "Source failures by kind", ["source", "status"],
                                       registry=r)
        self.breaker_state = Gauge("flashloan_breaker_state",
                                   "Circuit breaker: 0 closed, 1 half-open, 2 open", ["source"],
                                   registry=r, multiprocess_mode="max")
        self.audit_failures = Counter("flashloan_audit_failures_total",
                                      "Decisions withheld because the audit write failed",
                                      registry=r)
        self.requests = Histogram("flashloan_http_request_seconds", "HTTP request latency",
                                  ["method", "endpoint", "status"], buckets=_BUCKETS,
                                  registry=r)
        self.decision_seconds = Histogram("flashloan_decision_seconds",
                                          "Time of a whole decision, by outcome", ["outcome"],
                                          buckets=_BUCKETS, registry=r)
        self.scores = Histogram("flashloan_score", "Score (points) of each scored decision",
                                ["model_version"], buckets=_SCORE_BUCKETS, registry=r)
        self.pds = Histogram("flashloan_pd", "Calibrated PD of each scored decision",
                             ["model_version"], buckets=_PD_BUCKETS, registry=r)
        self.breaker_openings = Counter("flashloan_breaker_openings_total",
                                        "Times a source's circuit breaker opened", ["source"],
                                        registry=r)
        self.plans_refused = Counter("flashloan_strategy_plans_refused_total",
                                     "Stored strategy plans a worker refused to adopt, by why",
                                     ["reason"], registry=r)
        self.plan_refused = Gauge("flashloan_strategy_plan_refused",
                                  "1 while the worker refuses the newest stored strategy plan",
                                  registry=r, multiprocess_mode="livemax")
        self._collectors: list[Collector] = []
        # A metric's child for a set of label values is looked up once, then kept: the
        # lookup (labels()) takes a lock and builds a key, on every decision's hot path.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, metric.labels(*labels))
        return child

    def decision(self, outcome: str, durations_ms: dict[str, float], *,
                 elapsed_ms: float | None = None, score: float | None = None,
                 pd: float | None = None, model_version: str | None = None) -> None:
        """Count a decision and observe its steps, its time, and its score and PD if scored.

        Parameters
        ----------
        outcome
            ``approved``, ``declined`` or ``deferred``.
        durations_ms
            Milliseconds by step of the decision's timeline.
        elapsed_ms
            The whole decision's milliseconds; not observed when ``None``.
        score, pd
            The model's points and calibrated PD; ``None`` for a decision taken without a
            score (deferred for want of a source), which adds nothing to their histograms.
        model_version
            The version that scored; ``unknown`` labels a score given without it.
        """
        self._child(self.decisions, outcome).inc()
        for step, ms in durations_ms.items():
            self._child(self.step_seconds, step).observe(ms / 1000)
        if elapsed_ms is not None:
            self._child(self.decision_seconds, outcome).observe(elapsed_ms / 1000)
        version = model_version or "unknown"
        if score is not None:
            self._child(self.scores, version).observe(score)
        if pd is not None:
            self._child(self.pds, version).observe(pd)

    def source(self, outcome: SourceOutcome) -> None:
        self._child(self.source_seconds, outcome.scope, outcome.status).observe(
            outcome.latency_ms / 1000)
        if not outcome.ok:
            self._child(self.source_failures, outcome.scope, outcome.status).inc()

    def request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self._child(self.requests, method, endpoint, str(status)).observe(seconds)

    def breakers(self, states: dict[str, str]) -> None:
        for scope, state in states.items():
            self.breaker_state.labels(scope).set(BREAKER_STATES.get(state, 0))

    def breaker_opened(self, scope: str) -> None:
        """Count one opening of the circuit breaker of source ``scope``."""
        self._child(self.breaker_openings, scope).inc()

    def audit_failure(self) -> None:
        self.audit_failures.inc()

    def strategy_plan(self, refused: str | None) -> None:
        """Note a worker's verdict on the newest stored plan: None adopted, else why not."""
        if refused is not None:
            self._child(self.plans_refused, refused).inc()
        self.plan_refused.set(0 if refused is None else 1)

    def add_collector(self, collector: Collector) -> None:
        """Expose ``collector``'s metrics, read at every scrape, in either mode.

        In multiprocess mode the scrape reads the workers' files, which hold only the
        registry's own metrics: the collector is registered again there, each time. A
        collector without ``describe()`` is collected once here, to check its names.
        """
        self.registry.register(collector)
        self._collectors.append(collector)

    def exposition(self) -> tuple[bytes, str]:
        """Return the text exposition: every worker's figures in multiprocess mode."""
        if multiprocess_dir():
            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)
            for collector in self._collectors:
                registry.register(collector)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
