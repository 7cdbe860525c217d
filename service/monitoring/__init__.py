"""Watching the live book: a roll-up of decisions kept in their own transactions, and the
dashboard, drift and fairness read from it.

- :mod:`~service.monitoring.cells` — what one decision adds to the roll-up;
- :mod:`~service.monitoring.rollup` — the table's upsert and its range reads;
- :mod:`~service.monitoring.windows` — the windows and the buckets of three grains;
- :mod:`~service.monitoring.dashboard` — every panel over a window;
- :mod:`~service.monitoring.live_drift` — PSI against the deciding model's training set;
- :mod:`~service.monitoring.fairness` — outcomes by sex, age band and province;
- :mod:`~service.monitoring.collector` — drift as Prometheus gauges.
"""

from __future__ import annotations

from scoring.drift import DriftReference
from scoring.engine import DecisionEngine
from service.monitoring.dashboard import Monitoring


def drift_references(engine: DecisionEngine) -> dict[str, DriftReference | None]:
    """The drift reference of every model the engine decides with, by version."""
    return {m.version: DriftReference.from_card(m.card)
            for m in (engine.model, *engine.fallbacks.values())}


__all__ = ["Monitoring", "drift_references"]
