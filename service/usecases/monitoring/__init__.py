"""Watching the live book: a roll-up of decisions kept in their own transactions, and the
dashboard, drift and fairness read from it.

- :mod:`~service.usecases.monitoring.cells` — what one decision adds to the roll-up;
- :mod:`~service.usecases.monitoring.rollup` — the table's upsert and its range reads;
- :mod:`~service.usecases.monitoring.windows` — the windows and the buckets of three grains;
- :mod:`~service.usecases.monitoring.dashboard` — every panel over a window;
- :mod:`~service.usecases.monitoring.live_drift` — PSI against the deciding model's training set;
- :mod:`~service.usecases.monitoring.strategies` — strategies side by side, and shadows' swap sets;
- :mod:`~service.usecases.monitoring.fairness` — outcomes by sex, age band and province;
- :mod:`~service.usecases.monitoring.collector` — drift as Prometheus gauges.
"""

from __future__ import annotations

from service.usecases.monitoring.dashboard import Monitoring

__all__ = ["Monitoring"]
