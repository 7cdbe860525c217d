"""Batch scoring with explanations on pandas and on a local Dask cluster: rows/s and memory."""

from __future__ import annotations

import resource
import sys
import time
from functools import partial

import numpy as np
import pandas as pd

from bench.common import table
from datasources.stub.world import generate, population_ids
from scoring.batch import score_frame
from scoring.distributed import cluster_size, decide_partitioned, open_client, plan_partitions
from scoring.engine import DecisionEngine
from scoring.model import load_model
from scoring.policy import load_policy

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
    """Return the Markdown section of the Dask batch-scoring benchmark."""
    rows = 100_000 if quick else 1_000_000
    _say(f"{rows:,} rows")
    frame = _applications(rows)

    _reset_peak()
    started = time.perf_counter()
    engine = DecisionEngine(load_model(nthread=0), load_policy())
    expected = score_frame(frame, engine, explain=True)
    pandas_s = time.perf_counter() - started
    pandas_peak = _peak_mib()
    del engine
    _say(f"pandas {pandas_s:.1f} s")

    _reset_peak()
    started = time.perf_counter()
    with open_client("local", n_workers=WORKERS) as client:
        ready_s = time.perf_counter() - started
        workers, threads = cluster_size(client)
        parts = plan_partitions(rows, client)
        started = time.perf_counter()
        decided = decide_partitioned(frame, partial(score_frame, explain=True), client=client,
                                     model_version=None, policy_version=None,
                                     npartitions=parts)
        dask_s = time.perf_counter() - started
        worker_peaks = sorted(client.run(_worker_peak_mib).values())
    client_peak = _peak_mib()
    _say(f"dask {dask_s:.1f} s")
    try:
        pd.testing.assert_frame_equal(decided, expected, check_exact=True)
        identical = "yes, every column to the last bit"
    except AssertionError as exc:
        identical = f"**no**: {str(exc).splitlines()[0]}"

    peaks = ", ".join(f"{p:,.0f}" for p in worker_peaks)
    return "\n".join([
        "## Batch scoring on Dask",
        "",
        f"{rows:,} applications (raw source fields and the application: {DISTINCT:,} "
        "applicants of the synthetic world, repeated) decided and explained, "
        "`score_frame(explain=True)`: in one process with pandas (XGBoost and the reference "
        f"contributions on every core), and on a local Dask cluster of {workers} worker "
        f"processes of one thread each ({threads} threads), the frame cut into {parts} "
        "contiguous partitions (`flashloan score --dask local`; each worker builds its engine "
        "once). Dask's seconds include sending the partitions and gathering the results, not "
        f"starting the cluster ({ready_s:.1f} s). Peak RSS: the process's high-water mark "
        "over the run (a worker's over its life, engine and partitions included).",
        "",
        table(["", "seconds", "rows/s", "peak RSS (MiB)"],
              [["pandas, one process", f"{pandas_s:.1f}", f"{rows / pandas_s:,.0f}",
                f"{pandas_peak:,.0f}"],
               [f"Dask, {workers} workers × 1 thread, {parts} partitions", f"{dask_s:.1f}",
                f"{rows / dask_s:,.0f}", f"workers {peaks}; client {client_peak:,.0f}"]]),
        "",
        f"Ratio: {pandas_s / dask_s:.2f}× pandas's rows per second. Identical to pandas: "
        f"{identical}.",
    ])
