"""Model artifacts: loaded afresh by whoever asks, shared by threads without a lock."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xgboost as xgb

from datasources.base import INCOME_SCOPES
from datasources.stub.world import generate, population_ids
from scoring.online.canonical import file_sha256
from scoring.online.features import feature_matrix
from scoring.online.model import (
    DEFAULT_MODEL_VERSION,
    MODELS_DIR,
    ModelArtifact,
    ModelError,
    fallback_version,
    load_fallbacks,
    load_model,
)

THREADS = 6


@pytest.fixture(scope="module")
def shipped() -> ModelArtifact:
    return load_model()


@pytest.fixture(scope="module")
def applicants() -> np.ndarray:
    """Spec-ordered features of 1,600 synthetic applicants, in 32 batches of 50."""
    return feature_matrix(generate(population_ids(1600, 5)))


def test_threads_predicting_at_once_on_one_artifact_agree_with_one_thread(shipped, applicants):
    batches = np.array_split(applicants, 32)
    alone = [(shipped.score(b), shipped.predict_margin(b)) for b in batches]
    start = threading.Barrier(THREADS)

    def predict(thread: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        start.wait()
        out = []
        # Each thread starts at its own batch, and contributions and margins interleave,
        # so both kinds of prediction run on the one booster at the same moment.
        for step in range(len(batches)):
            i = (step + 5 * thread) % len(batches)
            if (i + thread) % 2:
                scored = shipped.score(batches[i])
                out.append((i, scored.contributions, scored.margin))
            else:
                out.append((i, np.empty(0), shipped.predict_margin(batches[i])))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = [row for rows in pool.map(predict, range(THREADS)) for row in rows]
    assert len(results) == THREADS * len(batches)
    for i, contributions, margin in results:
        scored, margin_alone = alone[i]
        if contributions.size:
            np.testing.assert_array_equal(contributions, scored.contributions)
            np.testing.assert_array_equal(margin, scored.margin)
        else:
            np.testing.assert_array_equal(margin, margin_alone)


def test_every_load_is_a_model_of_its_own(shipped, applicants):
    # No process-wide cache: the caller that loads a model owns the artifact it gets.
    again = load_model()
    assert again is not shipped and again.booster is not shipped.booster
    assert (again.version, again.sha256) == (shipped.version, shipped.sha256)
    np.testing.assert_array_equal(again.predict_margin(applicants[:100]),
                                  shipped.predict_margin(applicants[:100]))


def test_fallbacks_are_loaded_once_each_beside_their_model(shipped):
    fallbacks = load_fallbacks(shipped, (*INCOME_SCOPES, *INCOME_SCOPES))
    assert sorted(fallbacks) == sorted(INCOME_SCOPES)
    for scope, fallback in fallbacks.items():
        assert fallback.version == fallback_version(DEFAULT_MODEL_VERSION, scope)
        assert fallback.without == {scope}
    assert len({id(f) for f in fallbacks.values()}) == len(INCOME_SCOPES)


def test_a_model_that_is_not_made_of_trees_is_refused(tmp_path):
    # XGBoost guarantees thread-safe prediction for tree boosters only.
    folder = tmp_path / "linear"
    shutil.copytree(MODELS_DIR / DEFAULT_MODEL_VERSION, folder)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, len(card["features"])))
    booster = xgb.train({"booster": "gblinear", "objective": "binary:logistic"},
                        xgb.DMatrix(x, label=rng.integers(0, 2, 200)), num_boost_round=2)
    booster.save_model(str(folder / "model.json"))
    card.update(version="linear", model_sha256=file_sha256(folder / "model.json"))
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match=r"model linear must be a tree model .*; got gblinear"):
        ModelArtifact(folder)
