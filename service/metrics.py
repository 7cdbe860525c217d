"""Prometheus metrics, correct across gunicorn workers (multiprocess mode when configured)."""

from __future__ import annotations

import os
from pathlib import Path
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

from datasources.outcome import SourceOutcome

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


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
        # A metric's child for a set of label values is looked up once, then kept: the
        # lookup (labels()) takes a lock and builds a key, on every decision's hot path.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, metric.labels(*labels))
        return child

    def decision(self, outcome: str, durations_ms: dict[str, float]) -> None:
        self._child(self.decisions, outcome).inc()
        for step, ms in durations_ms.items():
            self._child(self.step_seconds, step).observe(ms / 1000)

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

    def audit_failure(self) -> None:
        self.audit_failures.inc()

    def exposition(self) -> tuple[bytes, str]:
        """Return the text exposition: every worker's figures in multiprocess mode."""
        if multiprocess_dir():
            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
