"""Batch scoring with explanations, and a backtest's replay of logged decisions, on pandas and
on a local Dask cluster: rows/s and memory."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import table
from datasources.base import INCOME_SCOPES
from datasources.stub.world import generate, population_ids
from scoring.batch.backtest import RECORDED, replay_frame
from scoring.batch.backtest_summary import summarise
from scoring.batch.distributed import (
    PartitionFn,
    cluster_size,
    decide_partitioned,
    open_client,
    plan_partitions,
)
from scoring.batch.frames import applicant_ages, score_frame
from scoring.online.engine import DecisionEngine
from scoring.online.features import features_for_frame
from scoring.online.model import load_fallbacks, load_model
from scoring.online.policy import load_policy

# Distinct applicants drawn from the synthetic world; the rows repeat them, so that the input
# costs seconds to make whatever the row count (scoring does the same work for a repeat).
DISTINCT = 50_000
WORKERS = 2


def _applications(rows: int) -> pd.DataFrame:
    """Applications as a batch file holds them: raw source fields and the application."""
    distinct = pd.DataFrame(generate(population_ids(min(rows, DISTINCT), 2027)))
    return distinct.iloc[np.arange(rows) % len(distinct)].reset_index(drop=True)


def _reset_peak() -> None:
    """Reset this process's peak RSS to its current RSS (Linux 4.0+), so that what is read
    next is the peak of what runs in between, not of earlier sections."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_mib() -> float:
    """Return this process's peak RSS since the last reset (VmHWM), else its lifetime's."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_peak_mib() -> float:
    """Return a worker process's peak RSS over its life (run on each worker)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _say(message: str) -> None:
    print(f"[bench] dask_scoring: {message}", file=sys.stderr, flush=True)


def run(quick: bool) -> str:
    """Return the Markdown sections of the Dask benchmarks."""
    rows = 100_000 if quick else 1_000_000
    return _scoring(rows) + "\n\n" + _backtest(rows)


def _logged(frame: pd.DataFrame, engine: DecisionEngine) -> pd.DataFrame:
    """The decision log of ``frame``'s applications as a backtest reads it
    (``service.usecases.backtests.loader``): every spec feature, the application's facts, and the
    decision ``engine`` recorded; one in ten decided with the income-tax source unknown (by
    the fallback model)."""
    features = features_for_frame(frame, engine.model.spec)
    logged = pd.DataFrame({
        "application_id": [f"a_{i:012x}" for i in range(len(frame))],
        "decided_at": "2026-11-01T00:00:00.000000Z", "strategy": "v1/2026.11",
        **{name: features[name].to_numpy(dtype=float) for name in engine.model.spec.names},
        "age": applicant_ages(frame), "purpose": frame["purpose"].to_numpy(dtype=object),
        "term_months": frame["term_months"].to_numpy(dtype=float),
        "amount": frame["amount"].to_numpy(dtype=float),
        "unknown_sources": np.where(np.arange(len(frame)) % 10 == 0, "income_tax", ""),
        "defaulted": np.where(np.arange(len(frame)) % 3 == 0, 0.0, np.nan)})
    recorded = replay_frame(logged, engine)
    for name in RECORDED:
        logged[name] = recorded[f"c_{name}"]
    return logged


@dataclass
class Race:
    """One frame decided by ``fn`` in one process and on a local Dask cluster."""

    expected: pd.DataFrame
    pandas_s: float
    pandas_peak: float
    dask_s: float
    ready_s: float
    workers: int
    threads: int
    parts: int
    worker_peaks: list[float]
    client_peak: float
    identical: str

    def figures(self, rows: int, unit: str) -> list[str]:
        """The table of both runs and the ratio, in ``unit`` per second."""
        peaks = ", ".join(f"{p:,.0f}" for p in self.worker_peaks)
        return [
            table(["", "seconds", f"{unit}/s", "peak RSS (MiB)"],
                  [["pandas, one process", f"{self.pandas_s:.1f}",
                    f"{rows / self.pandas_s:,.0f}", f"{self.pandas_peak:,.0f}"],
                   [f"Dask, {self.workers} workers × 1 thread, {self.parts} partitions",
                    f"{self.dask_s:.1f}", f"{rows / self.dask_s:,.0f}",
                    f"workers {peaks}; client {self.client_peak:,.0f}"]]),
            "",
            f"Ratio: {self.pandas_s / self.dask_s:.2f}× pandas's {unit} per second. Identical "
            f"to pandas: {self.identical}.",
        ]


def _race(frame: pd.DataFrame, fn: PartitionFn, engine: DecisionEngine,
          policy_version: str | None) -> Race:
    """Decide ``frame`` with ``fn`` and ``engine`` in this process, then on a local cluster
    whose workers build the engine of ``policy_version`` (the shipped model)."""
    _reset_peak()
    started = time.perf_counter()
    expected = fn(frame, engine)
    pandas_s = time.perf_counter() - started
    pandas_peak = _peak_mib()
    _say(f"pandas {pandas_s:.1f} s")
    _reset_peak()
    started = time.perf_counter()
    with open_client("local", n_workers=WORKERS) as client:
        ready_s = time.perf_counter() - started
        workers, threads = cluster_size(client)
        parts = plan_partitions(len(frame), client)
        started = time.perf_counter()
        decided = decide_partitioned(frame, fn, client=client, model_version=None,
                                     policy_version=policy_version, npartitions=parts)
        dask_s = time.perf_counter() - started
        worker_peaks = sorted(client.run(_worker_peak_mib).values())
    client_peak = _peak_mib()
    _say(f"dask {dask_s:.1f} s")
    try:
        pd.testing.assert_frame_equal(decided, expected, check_exact=True)
        identical = "yes, every column to the last bit"
    except AssertionError as exc:
        identical = f"**no**: {str(exc).splitlines()[0]}"
    return Race(expected, pandas_s, pandas_peak, dask_s, ready_s, workers, threads, parts,
                worker_peaks, client_peak, identical)


def _backtest(rows: int) -> str:
    """A stricter policy's backtest over ``rows`` logged decisions, on pandas and on Dask."""
    model = load_model(nthread=0)
    champion = DecisionEngine(model, load_policy(), load_fallbacks(model, INCOME_SCOPES))
    logged = _logged(_applications(rows), champion)
    stricter = {**load_policy().doc, "version": "2026.11-strict", "pd_cutoff": 0.035}
    with tempfile.TemporaryDirectory() as folder:
        policy = Path(folder) / "2026.11-strict.json"
        policy.write_text(json.dumps(stricter), encoding="utf-8")
        candidate = DecisionEngine(model, load_policy(str(policy)), champion.fallbacks)
        _say(f"backtest over {rows:,} logged decisions")
        race = _race(logged, replay_frame, candidate, str(policy))
    started = time.perf_counter()
    summary = summarise(logged, race.expected, lgd=1.0)
    summary_s = time.perf_counter() - started
    return "\n".join([
        "## Backtests on Dask",
        "",
        f"{rows:,} logged decisions, as a backtest reads them from the audit log (every "
        "feature, the application's facts and the decision recorded by the champion; one in "
        "ten with the income-tax source unknown, decided by the fallback model), decided "
        "again by a stricter policy (PD cut-off 0.035; `scoring.batch.backtest.replay_frame`): in "
        "one process with pandas, and on a local Dask cluster of "
        f"{race.workers} worker processes of one thread each, in {race.parts} partitions "
        "(`flashloan backtest --dask local`). Reading the log from the database is not timed "
        f"here. The summary (swap matrix, expected loss, PSI, changes) then takes "
        f"{summary_s:.1f} s; the stricter policy changes "
        f"{summary['changes']['count']:,} decisions "
        f"({summary['approval']['change_pp']:+.1f} pp approvals).",
        "",
        *race.figures(rows, "decisions"),
    ])


def _scoring(rows: int) -> str:
    """Batch scoring with explanations over ``rows`` applications, pandas and Dask."""
    _say(f"{rows:,} rows")
    race = _race(_applications(rows), partial(score_frame, explain=True),
                 DecisionEngine(load_model(nthread=0), load_policy()), None)
    return "\n".join([
        "## Batch scoring on Dask",
        "",
        f"{rows:,} applications (raw source fields and the application: {DISTINCT:,} "
        "applicants of the synthetic world, repeated) decided and explained, "
        "`score_frame(explain=True)`: in one process with pandas (XGBoost and the reference "
        f"contributions on every core), and on a local Dask cluster of {race.workers} worker "
        f"processes of one thread each ({race.threads} threads), the frame cut into "
        f"{race.parts} contiguous partitions (`flashloan score --dask local`; each worker "
        "builds its engine once). Dask's seconds include sending the partitions and gathering "
        f"the results, not starting the cluster ({race.ready_s:.1f} s). Peak RSS: the "
        "process's high-water mark over the run (a worker's over its life, engine and "
        "partitions included).",
        "",
        *race.figures(rows, "rows"),
    ])
