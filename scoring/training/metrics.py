"""Discrimination and calibration metrics of a PD model on held-out data."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Return the ROC AUC (Mann-Whitney, ties counted half)."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both defaults and non-defaults")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ks(y: np.ndarray, score: np.ndarray) -> float:
    """Return the Kolmogorov-Smirnov distance between the score distributions."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(score), kind="mergesort")
    ys = y[order]
    tpr = np.cumsum(ys) / ys.sum()
    fpr = np.cumsum(~ys) / (~ys).sum()
    return float(np.max(np.abs(tpr - fpr)))


def brier(y: np.ndarray, pd: np.ndarray) -> float:
    """Return the mean squared error of the PD against the outcome."""
    return float(np.mean((np.asarray(pd) - np.asarray(y)) ** 2))


def calibration_table(y: np.ndarray, pd: np.ndarray, bins: int = 10) -> list[dict]:
    """Return predicted vs observed default rates by PD decile."""
    y = np.asarray(y, dtype=float)
    pd = np.asarray(pd, dtype=float)
    edges = np.quantile(pd, np.linspace(0, 1, bins + 1))
    ix = np.clip(np.searchsorted(edges, pd, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        mask = ix == b
        if not mask.any():
            continue
        table.append({"bin": b + 1, "count": int(mask.sum()),
                      "pd_min": round(float(pd[mask].min()), 6),
                      "pd_max": round(float(pd[mask].max()), 6),
                      "pd_mean": round(float(pd[mask].mean()), 6),
                      "default_rate": round(float(y[mask].mean()), 6)})
    return table


def summary(y: np.ndarray, pd: np.ndarray, true_pd: np.ndarray | None) -> dict:
    """Return the card's metrics block."""
    a = auc(y, pd)
    return {
        "n": len(y),
        "defaults": int(np.sum(y)),
        "auc": round(a, 6),
        "ks": round(ks(y, pd), 6),
        "gini": round(2 * a - 1, 6),
        "brier": round(brier(y, pd), 6),
        "oracle_auc": None if true_pd is None else round(auc(y, true_pd), 6),
        "mean_pd": round(float(np.mean(pd)), 6),
        "default_rate": round(float(np.mean(y)), 6),
        "calibration_table": calibration_table(y, pd),
    }
