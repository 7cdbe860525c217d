"""The objects one worker builds once and every request reuses, kept in ``app.extensions``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from audit import AuditStore, Pseudonymiser
from datasources.gather import Gatherer
from scoring.online.engine import DecisionEngine
from scoring.online.policy import Policy
from service.ops.metrics import Metrics
from service.ops.rate_limits import RateLimits
from service.ops.settings import Settings
from service.persistence.checkpointer import Checkpointer
from service.usecases.applications import ApplicationBook
from service.usecases.backtests.jobs import BacktestDesk
from service.usecases.consents import ConsentBook
from service.usecases.engines import Engines
from service.usecases.flow import DecisionFlow
from service.usecases.monitoring import Monitoring
from service.usecases.outcomes import OutcomeBook
from service.usecases.replay import Replayer
from service.usecases.retries import RetryDesk
from service.usecases.reviews import ReviewDesk
from service.usecases.strategies import StrategyBook
from service.web.auth import KeyRing
from service.web.charts.cache import ChartCache
from service.web.charts.scales import PointsScales

KEY = "flashloan"


@dataclass
class Wiring:
    """What a worker needs: settings, store, keys and limits, sources, model, policy, flow,
    metrics."""

    settings: Settings
    store: AuditStore
    pseudonymiser: Pseudonymiser
    keys: KeyRing
    limits: RateLimits
    consents: ConsentBook
    sources: dict[str, Any]
    gatherer: Gatherer
    engine: DecisionEngine
    flow: DecisionFlow
    metrics: Metrics
    replayer: Replayer
    reviews: ReviewDesk
    applications: ApplicationBook
    checkpointer: Checkpointer
    retries: RetryDesk
    # Every reason code with its meaning (``scoring.governance.catalogue``), as GET /v1/reasons
    # serves it.
    reasons: dict[str, Any]
    outcomes: OutcomeBook
    monitoring: Monitoring
    # Every engine loaded, and the strategies in force (champion, challenger, shadows).
    engines: Engines
    strategies: StrategyBook
    # Backtests requested through the API, run in the background.
    backtests: BacktestDesk
    # The points scale of each model whose decisions are drawn, read once per worker.
    scales: PointsScales
    # The versions of the models run once at start (the main model, then each fallback).
    warmed_models: tuple[str, ...] = ()
    # The dashboard's charts, drawn again only when their numbers change.
    charts: ChartCache = field(default_factory=ChartCache)

    def policy_in_force(self) -> Policy:
        """The policy in force: the current champion's, as the strategy book holds it. The
        bounds of requests, the API document's and the console's grades and terms all read
        it, and follow a change of strategies."""
        return self.strategies.current().champion.engine.policy

    def close(self) -> None:
        from datasources.factory import close_sources

        self.backtests.close()
        self.checkpointer.close()
        self.flow.committer.close()
        self.gatherer.close()
        close_sources(self.sources)
        self.limits.close()
        self.store.dispose()


def wiring() -> Wiring:
    """The current app's wiring, for the views and the console's pages only: what they call
    on is given to everything else by the composition root (``service.web.app``)."""
    return current_app.extensions[KEY]


def install(app: Flask, wired: Wiring) -> None:
    """Keep ``wired`` in the app, for its views and the console's pages."""
    app.extensions[KEY] = wired
