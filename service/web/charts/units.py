"""Chart units: score points through the deciding model's card, or its log-odds of default."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scoring.online.scaling import PlattCalibration, ScoreScaling

UNITS = ("points", "log_odds")


@dataclass(frozen=True, slots=True)
class PointsScale:
    """Score points as a straight line in the margin: ``points = intercept + slope · margin``.

    PD = sigmoid(a·m + b), so the good:bad odds (1 − PD)/PD are exp(−(a·m + b)), and the card
    scales them to ``base_points + F·(ln odds − ln base_odds)`` with F = pdo / ln 2. Hence
    score = base_points − F·(ln base_odds + b) − F·a·m: a contribution of c log-odds is
    −F·a·c points, and the base value m₀ is base_points − F·(ln base_odds + b + a·m₀) points;
    the base and the contributions add up to the score before rounding. (The scaling clips a
    PD to [1e-9, 1 − 1e-9], |a·m + b| ≤ 20.7, far beyond the margin of any application.)
    """

    slope: float
    intercept: float

    @classmethod
    def of(cls, calibration: PlattCalibration, scaling: ScoreScaling) -> PointsScale:
        factor = scaling.factor
        return cls(-calibration.a * factor,
                   scaling.base_points - factor * (math.log(scaling.base_odds) + calibration.b))

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> PointsScale | None:
        """Return the scale a model card records; None if it records no calibration or scaling."""
        try:
            return cls.of(PlattCalibration.from_dict(card["calibration"]),
                          ScoreScaling.from_dict(card["score_scaling"]))
        except (KeyError, TypeError, ValueError):
            return None

    def total(self, margin: float) -> float:
        """Return the score, before rounding, of a margin."""
        return self.intercept + self.slope * margin

    def step(self, contribution: float) -> float:
        """Return the points a contribution of this many log-odds adds to the score."""
        return self.slope * contribution


def decider_scale(explanation: Mapping[str, Any],
                  cards: Iterable[Mapping[str, Any]]) -> PointsScale | None:
    """Return the points scale of the model that decided: the card holding the record's SHA-256."""
    sha256 = explanation.get("model_sha256")
    for card in cards:
        if sha256 and card.get("model_sha256") == sha256:
            return PointsScale.from_card(card)
    return None


def parse_units(text: str | None) -> str:
    """Return the units a chart is asked for: points when none is named."""
    units = text or "points"
    if units not in UNITS:
        raise ValueError(f"units must be {' or '.join(UNITS)}; got {units!r}")
    return units


def contribution_text(value: float | None, units: str) -> str:
    """A contribution as the chart and the features table write it: +10.4 or +0.412."""
    if value is None:
        return "—"
    if units == "log_odds":
        return f"{value:+.3f}"
    # Below a twentieth of a point one decimal would read "-0.0" beside a red bar.
    return f"{value:+.1f}" if abs(value) >= 0.05 or value == 0 else f"{value:+.2f}"


def total_text(value: float, units: str) -> str:
    return f"{value:.1f}" if units == "points" else f"{value:+.3f}"
