"""Calibration of the model margin to a PD, and the scorecard scaling of PD to points."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class PlattCalibration:
    """PD = sigmoid(a · margin + b), fitted on held-out data; monotone in the margin (a > 0)."""

    a: float
    b: float
    method: str = "platt"

    def pd(self, margin: np.ndarray | float) -> np.ndarray:
        z = self.a * np.asarray(margin, dtype=float) + self.b
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def fit(cls, margin: np.ndarray, y: np.ndarray, iterations: int = 50) -> PlattCalibration:
        """Fit a and b by Newton's method on the log-likelihood."""
        x = np.asarray(margin, dtype=float)
        t = np.asarray(y, dtype=float)
        a, b = 1.0, 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(a * x + b)))
            w = np.maximum(p * (1 - p), 1e-12)
            g = np.array([np.sum((p - t) * x), np.sum(p - t)])
            h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
            step = np.linalg.solve(h + 1e-9 * np.eye(2), g)
            a, b = a - step[0], b - step[1]
            if np.max(np.abs(step)) < 1e-10:
                break
        if not a > 0:
            raise ValueError(f"calibration slope must be positive; got {a}")
        return cls(float(a), float(b))

    @classmethod
    def from_dict(cls, data: dict) -> PlattCalibration:
        if data.get("method") != "platt":
            raise ValueError(f"calibration method must be platt; got {data.get('method')!r}")
        return cls(float(data["a"]), float(data["b"]))


@dataclass(frozen=True, slots=True)
class ScoreScaling:
    """Scorecard points: ``base_points`` at good:bad odds ``base_odds``; ``pdo`` doubles them."""

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    def score(self, pd: np.ndarray | float) -> np.ndarray:
        """Return the score (rounded to whole points) of each PD."""
        # np.clip's own Python layer costs more than the arithmetic of one row.
        p = np.minimum(np.maximum(np.asarray(pd, dtype=float), 1e-9), 1 - 1e-9)
        good_odds = (1 - p) / p
        raw = self.base_points + self.factor * (np.log(good_odds) - math.log(self.base_odds))
        return raw.round()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ScoreScaling:
        return cls(float(data["base_points"]), float(data["base_odds"]), float(data["pdo"]))
