"""Drift as Prometheus gauges, read from the roll-up when Prometheus scrapes.

``flashloan_drift_psi`` gives, per model and variable (``score``, ``pd`` or a feature), the
dashboard's PSI over the last 24 hours; a model with too few decisions to judge gives none.
The figures live in the database, not in a worker, so every worker gives the same values; a
read that fails gives no sample rather than a failed scrape. Fairness is not exported: it is
read by risk officers and auditors only, and ``/metrics`` is an administrator's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.ops.metrics import COLLECTED_GAUGES
from service.usecases.monitoring.windows import Window

log = logging.getLogger("flashloan.monitoring")
PSI = "flashloan_drift_psi"
WINDOW = "day"


class DriftReader(Protocol):
    """What the collector reads the drift from: the monitoring (:mod:`.dashboard`)."""

    def window(self, name: str) -> Window:
        """The window of that name, ending now."""

    def drift(self, window: Window) -> dict[str, Any]:
        """Each model's drift over ``window``, as the dashboard shows it."""


class MonitoringCollector(Collector):
    """Collects the drift gauges from ``monitoring`` at each scrape."""

    def __init__(self, monitoring: DriftReader) -> None:
        self.monitoring = monitoring

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Described without reading the database: registering must not query it.
        yield self._family()

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(PSI, "Population stability index against the training set, "
                                      "last 24 hours", labels=list(COLLECTED_GAUGES[PSI]))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        psi = self._family()
        try:
            drift = self.monitoring.drift(self.monitoring.window(WINDOW))
        except Exception:
            log.exception("the drift gauges could not be read")
            yield psi
            return
        for model in drift["models"]:
            rows = [(variable, model[variable]) for variable in ("score", "pd")
                    if model[variable] is not None]
            rows += [(row["feature"], row) for row in model["features"]]
            for variable, row in rows:
                # A PSI over too few decisions to judge is not exported: it would alert.
                if row["psi"] is not None and row["level"] != "too_few":
                    psi.add_metric([model["model_version"], variable], row["psi"])
        yield psi
