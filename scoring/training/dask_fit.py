"""Fitting the boosted trees on a Dask cluster (``xgboost.dask``), the rows spread over its
workers: the fitter :mod:`scoring.training.train` takes with ``--dask``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import xgboost as xgb
from distributed import Client

from scoring.batch.distributed import cluster_size
from scoring.training.fitting import EARLY_STOPPING, MAX_ROUNDS, Rows, report_round


@dataclass(frozen=True)
class DaskFit:
    """Fit with ``xgboost.dask.train`` on a cluster, the rows spread over its workers.

    The same parameters and monotone constraints as on one machine, but not the same trees
    to the bit: each worker sketches the histogram bins of its own rows and the sketches are
    merged, so split points (and sampling) differ slightly from a single-machine fit.
    """

    client: Client

    def trained_on(self) -> dict[str, Any]:
        """Return what the card says of where the model was fit."""
        workers, threads = cluster_size(self.client)
        return {"on": "dask", "workers": workers, "threads": threads}

    def __call__(self, params: dict[str, Any], train: Rows, valid: Rows, names: list[str],
                 progress: Callable[[str], None]) -> xgb.Booster:
        """Fit with early stopping on ``valid``; return the booster with ``best_iteration``."""
        from xgboost import dask as dxgb

        workers, _ = cluster_size(self.client)
        progress(f"fitting on {workers} Dask workers")
        dtrain = dxgb.DaskDMatrix(self.client, *self._arrays(train, workers), missing=np.nan,
                                  feature_names=names)
        dvalid = dxgb.DaskDMatrix(self.client, *self._arrays(valid, workers), missing=np.nan,
                                  feature_names=names)
        # Callbacks would run on the workers: the rounds are reported from the history.
        out = dxgb.train(self.client, params, dtrain, num_boost_round=MAX_ROUNDS,
                         evals=[(dvalid, "validation")], early_stopping_rounds=EARLY_STOPPING,
                         verbose_eval=False)
        losses = out["history"]["validation"]["logloss"]
        for rounds in range(1, len(losses) + 1):
            report_round(progress, rounds, losses)
        return out["booster"]

    def _arrays(self, rows: Rows, parts: int) -> tuple[Any, Any]:
        """Return features and labels as Dask arrays of ``parts`` blocks, on the workers."""
        import dask.array as da

        x, y = rows
        workers = list(self.client.nthreads())
        edges = np.linspace(0, len(y), max(1, min(parts, len(y))) + 1).round().astype(int)
        blocks: tuple[list[Any], list[Any]] = ([], [])
        for k, (a, b) in enumerate(pairwise(edges)):
            # A block's features and labels on one worker, each worker holding a block.
            fx, fy = self.client.scatter([x[a:b], y[a:b]], workers=[workers[k % len(workers)]],
                                         hash=False)
            blocks[0].append(da.from_delayed(fx, shape=(b - a, x.shape[1]), dtype=x.dtype))
            blocks[1].append(da.from_delayed(fy, shape=(b - a,), dtype=y.dtype))
        return da.concatenate(blocks[0]), da.concatenate(blocks[1])
