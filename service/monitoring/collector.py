"""Drift and fairness as Prometheus gauges, read from the roll-up when Prometheus scrapes.

The figures are the dashboard's over the last 24 hours: ``flashloan_drift_psi`` per model
and variable (``score``, ``pd`` or a feature) and ``flashloan_fairness_ratio`` per dimension
and group (approval rate over the most favoured group's; groups too small to judge are left
out, as are the PSIs of a model with too few decisions to judge). They live in the database,
not in a worker, so every worker gives the same values; a read that fails gives no sample
rather than a failed scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.metrics import COLLECTED_GAUGES

if TYPE_CHECKING:
    from service.monitoring.dashboard import Monitoring

log = logging.getLogger("flashloan.monitoring")
PSI, RATIO = "flashloan_drift_psi", "flashloan_fairness_ratio"

WINDOW = "day"


class MonitoringCollector(Collector):
    def __init__(self, monitoring: Monitoring) -> None:
        self.monitoring = monitoring

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Described without reading the database: registering must not query it.
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily(PSI, "Population stability index against the training set, "
                                       "last 24 hours", labels=list(COLLECTED_GAUGES[PSI])),
                GaugeMetricFamily(RATIO, "Approval rate over the most favoured group's, last "
                                         "24 hours", labels=list(COLLECTED_GAUGES[RATIO])))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        psi, ratio = self._families()
        try:
            window = self.monitoring.window(WINDOW)
            found = self.monitoring.sums(window)
            drift = self.monitoring.drift(window, found)
            fairness = self.monitoring.fairness(window, found)
        except Exception:
            log.exception("the monitoring gauges could not be read")
            yield from (psi, ratio)
            return
        for model in drift["models"]:
            rows = [(variable, model[variable]) for variable in ("score", "pd")
                    if model[variable] is not None]
            rows += [(row["feature"], row) for row in model["features"]]
            for variable, row in rows:
                # A PSI over too few decisions to judge is not exported: it would alert.
                if row["psi"] is not None and row["level"] != "too_few":
                    psi.add_metric([model["model_version"], variable], row["psi"])
        for dimension in fairness["dimensions"]:
            for group in dimension["groups"]:
                if not group["too_few"] and group["approval_ratio"] is not None:
                    ratio.add_metric([dimension["dimension"], group["group"]],
                                     group["approval_ratio"])
        yield from (psi, ratio)
