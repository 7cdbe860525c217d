"""One backtest: the decision log of a window decided again by a candidate strategy.

Shared by ``flashloan backtest`` and ``POST /v1/backtests``. The log's scored decisions are
read (:mod:`~service.usecases.backtests.loader`), decided by the candidate's engine on pandas, or by
partitions on a Dask cluster with the same figures to the last bit
(:func:`scoring.batch.distributed.decide_partitioned`), and summarised
(:func:`scoring.batch.backtest_summary.summarise`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from audit import AuditStore
from scoring.batch.backtest import replay_frame
from scoring.batch.backtest_summary import summarise
from scoring.governance.strategy import Strategy
from scoring.online.policy import policy_path
from service.usecases.backtests.loader import logged_decisions
from service.usecases.engines import Engines

# Loss given default when none is named: the whole line is lost (the most prudent figure).
DEFAULT_LGD = 1.0


@dataclass(frozen=True, slots=True)
class Backtest:
    """What a backtest asks: the candidate, the window of decisions and the LGD."""

    strategy: Strategy
    since: datetime | None = None
    until: datetime | None = None
    lgd: float = DEFAULT_LGD

    def __post_init__(self) -> None:
        if not 0.0 <= self.lgd <= 1.0:
            raise ValueError(f"lgd must be in [0, 1]; got {self.lgd}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")


@dataclass(frozen=True, slots=True)
class BacktestResult:
    summary: dict[str, Any]
    report: str
    rows: int


def replayed_by(engines: Engines, backtest: Backtest, frame: pd.DataFrame, *,
                dask: str | None = None, npartitions: int | None = None) -> pd.DataFrame:
    """The candidate's decisions of ``frame``: on pandas, or on the Dask cluster ``dask``
    (``local`` or ``tcp://host:port``) in ``npartitions`` partitions (by default, see
    :func:`scoring.batch.distributed.plan_partitions`)."""
    strategy = backtest.strategy
    engine = engines.candidate(strategy)
    if dask is None or frame.empty:
        return replay_frame(frame, engine)
    from scoring.batch.distributed import decide_partitioned, open_client

    policy = policy_path(strategy.policy, engines.policy_search)
    with open_client(dask) as client:
        return decide_partitioned(frame, replay_frame, client=client,
                                  model_version=strategy.model,
                                  policy_version=str(policy) if policy else strategy.policy,
                                  search=engines.model_search, npartitions=npartitions)


class ReportRenderer(Protocol):
    """Renders a backtest's summary as its HTML report (``service.web.backtest_report``)."""

    def __call__(self, summary: Mapping[str, Any], *, strategy: str,
                 window: tuple[datetime | None, datetime | None],
                 generated_at: datetime) -> str: ...


def run_backtest(store: AuditStore, engines: Engines, backtest: Backtest, *,
                 render: ReportRenderer, dask: str | None = None,
                 progress: Callable[[str], None] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> BacktestResult:
    """Run ``backtest`` over ``store``'s decision log and ``render`` its report; ModelError or
    PolicyError when the candidate cannot be loaded, StrategyError when it cannot decide
    alone."""
    say = progress or (lambda _text: None)
    strategy = backtest.strategy
    engine = engines.candidate(strategy)
    frame = logged_decisions(store, engine.model.spec, since=backtest.since,
                             until=backtest.until)
    say(f"{len(frame):,} logged decisions read; deciding them with {strategy.name}"
        + (f" on Dask ({dask})" if dask else ""))
    replayed = replayed_by(engines, backtest, frame, dask=dask)
    summary = summarise(frame, replayed, lgd=backtest.lgd)
    summary["strategy"] = strategy.name
    summary["skipped"] = dict(frame.attrs.get("skipped", {}))
    report = render(summary, strategy=strategy.name,
                    window=(backtest.since, backtest.until), generated_at=now())
    return BacktestResult(summary, report, len(frame))


def summary_text(summary: dict[str, Any]) -> str:
    """A summary as the backtests table stores it (JSON, Chinese as written)."""
    return json.dumps(summary, ensure_ascii=False)
