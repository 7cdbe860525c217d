"""Model metrics agree with an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from scoring.training.metrics import auc, brier, calibration_table, ks


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    score = rng.random(5000)
    y = (rng.random(5000) < score * 0.3).astype(int)
    return y, np.round(score, 2)  # rounding makes ties


def test_auc_matches_sklearn_with_ties(data):
    y, s = data
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_ks_matches_the_roc_curve(data):
    y, s = data
    fpr, tpr, _ = roc_curve(y, s)
    assert ks(y, s) == pytest.approx(np.max(tpr - fpr), abs=2e-3)


def test_brier_matches_sklearn(data):
    y, s = data
    assert brier(y, s) == pytest.approx(brier_score_loss(y, s))


def test_calibration_table_covers_every_row(data):
    y, s = data
    table = calibration_table(y, s)
    assert sum(row["count"] for row in table) == len(y)
    assert all(row["pd_min"] <= row["pd_mean"] <= row["pd_max"] for row in table)
