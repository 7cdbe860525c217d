"""Score scaling and calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.online.scaling import PlattCalibration, ScoreScaling


def test_base_points_at_base_odds():
    s = ScoreScaling(600, 50, 20)
    assert s.score(1 / 51) == 600


def test_points_to_double_the_odds():
    s = ScoreScaling(600, 50, 20)
    # Good:bad odds of 100:1 are double the base odds: 20 more points.
    assert s.score(1 / 101) == 620
    assert s.score(1 / 26) == 580


def test_score_falls_as_pd_rises():
    pd = np.linspace(0.001, 0.999, 200)
    assert np.all(np.diff(ScoreScaling().score(pd)) <= 0)


def test_platt_fit_recovers_a_known_calibration():
    rng = np.random.default_rng(1)
    margin = rng.normal(-3, 1.2, 200_000)
    truth = PlattCalibration(0.8, -0.4)
    y = rng.random(margin.size) < truth.pd(margin)
    fitted = PlattCalibration.fit(margin, y)
    assert fitted.a == pytest.approx(0.8, abs=0.05)
    assert fitted.b == pytest.approx(-0.4, abs=0.15)


def test_calibrated_pd_is_monotone_in_the_margin():
    cal = PlattCalibration(0.9, 0.1)
    margin = np.linspace(-10, 5, 1000)
    assert np.all(np.diff(cal.pd(margin)) > 0)
    assert cal.pd(0.0) == pytest.approx(1 / (1 + math.exp(-0.1)))


def test_a_decreasing_calibration_is_refused():
    rng = np.random.default_rng(2)
    margin = rng.normal(size=5000)
    y = rng.random(5000) < 1 / (1 + np.exp(margin))
    with pytest.raises(ValueError, match="slope must be positive"):
        PlattCalibration.fit(margin, y)
