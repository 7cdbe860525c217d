"""Batch work on a Dask cluster: a client for an address, decisions by partition, training.

A frame is cut into contiguous partitions, each decided on a worker by the same model, policy
and code as on one machine, and the results are put back in the input's order: every row's
figures are the same to the last bit as when the whole frame is decided in one process
(features, scores, contributions and reasons are computed row by row).

Each worker builds its decision engine once, when the cluster is first asked for that model
and policy: a worker plugin named by the versions and their digests owns it, so that every
partition and every later call with the same versions reuses it, and a worker that joins
later builds its own. The model and policy are read on the workers, so every worker must
see them at the same paths as the caller, with the same digests (checked).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from datasources.base import INCOME_SCOPES
from scoring.online.engine import DecisionEngine
from scoring.online.model import (
    DEFAULT_MODEL_VERSION,
    ModelError,
    load_fallbacks,
    load_model,
    read_card,
)
from scoring.online.policy import load_policy

LOCAL = "local"
# Rows per partition when the caller names no count: small enough to spread a file over
# the workers and bound each one's memory, large enough that a partition's overhead is small.
PARTITION_ROWS = 100_000

PartitionFn = Callable[[pd.DataFrame, DecisionEngine], pd.DataFrame]


class ClusterError(RuntimeError):
    """A Dask cluster that cannot be started or reached, or that has no workers."""


def check_address(address: str) -> str:
    """Return ``address`` if it is ``local`` or ``tcp://HOST:PORT``; else raise ValueError."""
    if address == LOCAL:
        return address
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if (parts.scheme != "tcp" or not parts.hostname or port is None
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise ValueError(f"dask address must be {LOCAL!r} or 'tcp://HOST:PORT'; got {address!r}")
    return address


@contextmanager
def open_client(address: str, *, n_workers: int = 2, timeout: float = 10.0) -> Iterator[Client]:
    """Yield a Dask client for ``address``, closed (with its local cluster) on exit.

    Parameters
    ----------
    address
        ``"local"`` starts a cluster of ``n_workers`` worker processes on this machine, one
        thread each, without a dashboard; ``"tcp://HOST:PORT"`` connects to a running
        scheduler within ``timeout`` seconds.
    n_workers
        Worker processes of a local cluster (ignored for a scheduler's address).
    """
    address = check_address(address)
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1; got {n_workers}")
    with ExitStack() as stack:
        try:
            if address == LOCAL:
                # The scheduler serves its health and metrics routes even without a
                # dashboard: on a free local port, so that clusters can run side by side.
                cluster = stack.enter_context(LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True,
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}))
                client = stack.enter_context(Client(cluster))
            else:
                client = stack.enter_context(Client(address, timeout=timeout))
        except OSError as exc:
            raise ClusterError(f"no Dask cluster at {address}: {exc}") from None
        yield client


def cluster_size(client: Client) -> tuple[int, int]:
    """Return the cluster's workers and their threads; raise ClusterError without workers."""
    nthreads = client.nthreads()
    if not nthreads:
        raise ClusterError("the Dask cluster has no workers")
    return len(nthreads), sum(nthreads.values())


def plan_partitions(rows: int, client: Client, npartitions: int | None = None) -> int:
    """Return how many partitions ``rows`` rows are cut into: ``npartitions`` if given,
    else one per worker thread or per ``PARTITION_ROWS`` rows, whichever is more; never
    more than the rows (one for none)."""
    if npartitions is not None and npartitions < 1:
        raise ValueError(f"npartitions must be at least 1; got {npartitions}")
    _, threads = cluster_size(client)
    wanted = npartitions or max(threads, math.ceil(rows / PARTITION_ROWS))
    return max(1, min(wanted, rows))


def decide_partitioned(frame: pd.DataFrame, fn: PartitionFn, *, client: Client,
                       model_version: str | None, policy_version: str | None,
                       search: tuple[Path, ...] = (),
                       npartitions: int | None = None) -> pd.DataFrame:
    """Run ``fn(partition, engine)`` over contiguous partitions of ``frame`` on the cluster.

    Parameters
    ----------
    fn
        A top-level function (or a ``functools.partial`` of one) that returns a frame with
        its partition's index, e.g. ``partial(score_frame, explain=True)``.
    model_version, policy_version
        The model (version or directory, found in ``search`` folders first) and policy
        (version or file) of the engine each worker builds once; None for the defaults.
    npartitions
        See :func:`plan_partitions`.

    Returns
    -------
    The partitions' results in the input's order, with its index.
    """
    parts = plan_partitions(len(frame), client, npartitions)
    engine = _engine_on_workers(client, model_version, policy_version,
                                tuple(Path(p) for p in search))
    sizes = [len(frame) // parts + (k < len(frame) % parts) for k in range(parts)]
    edges = np.concatenate(([0], np.cumsum(sizes)))
    chunks = [frame.iloc[a:b] for a, b in pairwise(edges)]
    # Scattered, not embedded in the tasks: a large frame is sent once, to the workers.
    scattered = client.scatter(chunks, hash=False)
    results = client.gather(client.map(_decide_partition, scattered, fn=fn, engine=engine,
                                       pure=False))
    decided = pd.concat(results) if len(results) > 1 else results[0]
    decided.index = frame.index
    return decided


def _decide_partition(part: pd.DataFrame, fn: PartitionFn, engine: str) -> pd.DataFrame:
    """Run ``fn`` on one partition with this worker's engine (on a worker)."""
    built = getattr(get_worker().plugins.get(engine), "engine", None)
    if built is None:
        raise ClusterError(f"this worker has no decision engine {engine}")
    decided = fn(part, built)
    if not decided.index.equals(part.index):
        raise ValueError("a partition's result must keep its rows, their order and index")
    return decided


class EnginePlugin(WorkerPlugin):
    """A worker's decision engine for one model and policy, built once when it starts."""

    # Registered again under the same name, it is kept as it is: the engine is reused.
    idempotent = True

    def __init__(self, model_version: str | None, policy_version: str | None,
                 search: tuple[Path, ...], model_sha256: str, policy_digest: str) -> None:
        self.model_version, self.policy_version, self.search = (model_version, policy_version,
                                                                search)
        self.model_sha256, self.policy_digest = model_sha256, policy_digest
        key = repr((model_version, policy_version, search, model_sha256, policy_digest))
        self.name = "flashloan-engine-" + hashlib.sha256(key.encode()).hexdigest()[:16]
        self.engine: DecisionEngine | None = None

    def setup(self, worker: Any) -> None:
        model = load_model(self.model_version, nthread=1, search=self.search)
        # With the fallbacks shipped beside it, as the service decides: a logged decision
        # whose income source did not answer is decided again by the model trained without it.
        engine = DecisionEngine(model, load_policy(self.policy_version),
                                load_fallbacks(model, INCOME_SCOPES, nthread=1,
                                               search=self.search))
        if engine.model.sha256 != self.model_sha256:
            raise ModelError(f"worker {worker.address}: model {engine.model.version} has "
                             f"SHA-256 {engine.model.sha256}; the caller's has "
                             f"{self.model_sha256}")
        if engine.policy.digest != self.policy_digest:
            raise ModelError(f"worker {worker.address}: policy {engine.policy.version} has "
                             f"digest {engine.policy.digest}; the caller's has "
                             f"{self.policy_digest}")
        self.engine = engine

    def teardown(self, worker: Any) -> None:
        self.engine = None


def _engine_on_workers(client: Client, model_version: str | None, policy_version: str | None,
                       search: tuple[Path, ...]) -> str:
    """Have every worker build the engine (once per cluster); return its plugin's name.

    The model and policy are found here first, so that an unknown version is refused
    before any worker is asked.
    """
    card = read_card(model_version or DEFAULT_MODEL_VERSION, search)
    policy = load_policy(policy_version)
    plugin = EnginePlugin(model_version, policy_version, search, card["model_sha256"],
                          policy.digest)
    try:
        client.register_plugin(plugin, name=plugin.name)
    except Exception:
        # Not left registered: the next call builds it again rather than finding none.
        with suppress(Exception):
            client.unregister_worker_plugin(plugin.name)
        raise
    return plugin.name


