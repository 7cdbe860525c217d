"""Fitting the boosted trees: on this machine, or (``scoring.batch.distributed``) on a Dask cluster.

Training (:mod:`scoring.training.train`) prepares the data, split, parameters and constraints the
same
way for either; a :class:`Fit` runs the boosting rounds with early stopping on validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import xgboost as xgb

MAX_ROUNDS = 1500
EARLY_STOPPING = 60

Rows = tuple[np.ndarray, np.ndarray]  # features (n, F) in the model's order, labels (n,)


class Fit(Protocol):
    """The boosting rounds, run on this machine (:class:`LocalFit`) or on a Dask cluster
    (``scoring.batch.distributed.DaskFit``): given the parameters, the training and validation
    rows, it returns the booster with its ``best_iteration`` (early stopping on validation).
    ``trained_on`` is what the card says of where it ran."""

    def trained_on(self) -> dict[str, Any]: ...

    def __call__(self, params: dict[str, Any], train: Rows, valid: Rows, names: list[str],
                 progress: Callable[[str], None]) -> xgb.Booster: ...


@dataclass(frozen=True)
class LocalFit:
    """Fit with ``xgboost.train`` in this process, on ``nthread`` threads (0: every core)."""

    nthread: int = 0

    def trained_on(self) -> dict[str, Any]:
        return {"on": "single machine"}

    def __call__(self, params: dict[str, Any], train: Rows, valid: Rows, names: list[str],
                 progress: Callable[[str], None]) -> xgb.Booster:
        dtrain = xgb.DMatrix(train[0], label=train[1], missing=np.nan, feature_names=names)
        dvalid = xgb.DMatrix(valid[0], label=valid[1], missing=np.nan, feature_names=names)
        return xgb.train(params, dtrain, num_boost_round=MAX_ROUNDS,
                         evals=[(dvalid, "validation")], early_stopping_rounds=EARLY_STOPPING,
                         verbose_eval=False, callbacks=[_Progress(progress)])


def report_round(progress: Callable[[str], None], rounds: int, losses: Any) -> None:
    """Report the validation loss after ``rounds`` rounds, every 100 rounds."""
    if rounds % 100 == 0:
        progress(f"round {rounds}: validation logloss {losses[rounds - 1]:.5f}")


class _Progress(xgb.callback.TrainingCallback):
    """Report validation loss every 100 rounds."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        super().__init__()
        self.progress = progress

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        report_round(self.progress, epoch + 1, evals_log["validation"]["logloss"])
        return False
