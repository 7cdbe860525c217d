"""Interventional contributions against a background: the same numbers as shap's
TreeExplainer, which loops over every background row, and they add up to the margin minus
the background's mean margin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from datasources.stub.world import generate, population_ids
from scoring.online.features import features_for_frame
from scoring.online.interventional import BLOCK_ROWS, InterventionalTreeShap, TreeShapError
from scoring.online.model import load_model


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    """The features of 300 applicants of the synthetic world, some of them unknown."""
    return features_for_frame(pd.DataFrame(generate(population_ids(300, 41)))).to_numpy()


def shap_interventional(booster, background: np.ndarray, x: np.ndarray) -> np.ndarray:
    # Imported here, not with the module: shap takes seconds to import.
    import shap

    # A plain array is cut to 100 random rows by shap's default masker: keep every row.
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.TreeExplainer(booster, data=masker, feature_perturbation="interventional",
                                   model_output="raw")
    return explainer.shap_values(x, check_additivity=False)


@pytest.mark.parametrize("version", ["v1", "v1-without-income_tax"])
def test_a_shipped_model_against_its_reference_equals_shap(rows, version):
    model = load_model(version)
    assert model.reference is not None
    background = model.reference.background
    x = model.select(rows)
    assert np.isnan(x).any(), "the rows must exercise missing values"
    ours = model.reference_contributions(rows)
    np.testing.assert_allclose(ours, shap_interventional(model.booster, background, x),
                               atol=1e-6)
    mean_margin = float(np.mean(model.margin(background), dtype=np.float64))
    np.testing.assert_allclose(ours.sum(axis=1) + mean_margin, model.margin(x), atol=1e-4)
    assert model.reference.mean_margin == pytest.approx(mean_margin, abs=1e-9)


def test_a_small_model_with_repeated_splits_and_missing_values_equals_shap():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 5))
    x[rng.random(x.shape) < 0.15] = np.nan
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2])
         + rng.normal(size=600) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 5, "eta": 0.3,
                         "nthread": 1, "seed": 1}, xgb.DMatrix(x, label=y, missing=np.nan),
                        num_boost_round=30)
    background = x[:37]
    explainer = InterventionalTreeShap(booster, background)
    ours = explainer(x[100:160])
    np.testing.assert_allclose(ours, shap_interventional(booster, background, x[100:160]),
                               atol=1e-6)
    margin = booster.predict(xgb.DMatrix(x[100:160], missing=np.nan), output_margin=True)
    mean = booster.predict(xgb.DMatrix(background, missing=np.nan), output_margin=True).mean()
    np.testing.assert_allclose(ours.sum(axis=1) + mean, margin, atol=1e-4)


def test_a_row_alone_gets_what_it_gets_in_a_batch(rows):
    model = load_model()
    batch = model.reference_contributions(rows)
    for i in (0, 33, 64, 299):
        np.testing.assert_array_equal(model.reference_contributions(rows[i]), batch[i:i + 1])


def test_a_batch_shared_among_threads_gets_what_one_thread_gets(rows):
    model = load_model()
    assert model.reference is not None
    x = model.select(np.tile(rows, (5, 1)))
    assert len(x) > BLOCK_ROWS
    explainer = InterventionalTreeShap(model.booster, model.reference.background)
    np.testing.assert_array_equal(explainer(x, threads=2), explainer(x))


def test_a_row_that_is_the_background_gets_nothing():
    model = load_model()
    assert model.reference is not None
    alone = model.reference.background[:1]
    explainer = InterventionalTreeShap(model.booster, alone)
    np.testing.assert_allclose(explainer(alone), 0.0, atol=1e-12)


def test_a_model_that_is_not_a_gbtree_is_refused():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 3))
    booster = xgb.train({"booster": "dart", "objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, label=rng.integers(0, 2, 100)), num_boost_round=3)
    with pytest.raises(TreeShapError, match="gbtree model; got dart"):
        InterventionalTreeShap(booster, x[:5])
