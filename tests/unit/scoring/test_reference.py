"""A model's reference population: loaded and checked with the model, or absent."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from datasources.stub.world import generate, population_ids, records_at
from scoring.online.canonical import file_sha256
from scoring.online.engine import DecisionEngine
from scoring.online.features import features_for_application
from scoring.online.model import (
    DEFAULT_MODEL_VERSION,
    MODELS_DIR,
    ModelArtifact,
    ModelError,
    load_model,
)
from scoring.online.policy import load_policy
from scoring.online.reasons import REASONS_AVERAGE, REASONS_REFERENCE
from scoring.online.reference import PERCENTILES, REFERENCE_FILE

SHIPPED = MODELS_DIR / DEFAULT_MODEL_VERSION


def _copy(tmp_path, name: str = "m"):
    folder = tmp_path / name
    shutil.copytree(SHIPPED, folder)
    return folder


def _card(folder) -> dict:
    return json.loads((folder / "card.json").read_text(encoding="utf-8"))


def _write_card(folder, card: dict) -> None:
    (folder / "card.json").write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("version", ["v1", "v1-without-provident_fund",
                                     "v1-without-social_security", "v1-without-income_tax"])
def test_every_shipped_model_loads_the_reference_its_card_names(version):
    model = load_model(version)
    named = model.card["reference"]
    reference = model.reference
    assert reference is not None
    assert reference.sha256 == named["sha256"] == file_sha256(model.directory / named["file"])
    assert reference.background.shape == (named["rows"], len(model.feature_names))
    assert 100 <= named["rows"] <= 200
    assert reference.feature_names == tuple(model.feature_names)
    assert reference.policy_version == named["policy_version"] == load_policy().version
    assert reference.mean_margin == pytest.approx(named["mean_margin"], abs=1e-6)
    for name in model.feature_names:
        values = reference.quantiles[name]
        assert values.shape == (len(PERCENTILES),)
        assert np.all(np.diff(values) >= 0), name
    # The reference is the approved: on average less risky than the training data.
    assert reference.mean_margin < model.card["base_value"]


@pytest.mark.parametrize("version", ["v1", "v1-without-income_tax"])
def test_the_card_ranks_every_feature_by_its_mean_absolute_contribution(version):
    model = load_model(version)
    view = model.card["global_importance"]
    means = [f["mean_abs_contribution"] for f in view["features"]]
    assert sorted(f["name"] for f in view["features"]) == sorted(model.feature_names)
    assert means == sorted(means, reverse=True) and min(means) >= 0
    assert view["rows"] == model.card["training_data"]["split"]["test"]


def test_bounds_are_the_training_splits_percentiles(shipped_model):
    reference = shipped_model.reference
    assert reference is not None
    low, high = reference.bounds(["cr_card_utilization"])["cr_card_utilization"]
    assert (low, high) == (reference.quantile("cr_card_utilization", 1),
                           reference.quantile("cr_card_utilization", 99))
    assert 0 <= low < high
    assert reference.quantile("pf_has_account", 0) == 0.0
    assert reference.quantile("pf_has_account", 100) == 1.0
    with pytest.raises(ValueError, match="whole number from 0 to 100"):
        reference.quantile("pf_has_account", 101)


def test_an_altered_reference_is_refused(tmp_path):
    folder = _copy(tmp_path)
    path = folder / REFERENCE_FILE
    text = path.read_text(encoding="utf-8")
    assert ", 1.0," in text
    path.write_text(text.replace(", 1.0,", ", 2.0,", 1), encoding="utf-8")
    with pytest.raises(ModelError, match=r"model v1: reference.json SHA-256 \w+ does not match"):
        ModelArtifact(folder)
    # A command that writes the reference afresh can still load the model.
    assert ModelArtifact(folder, with_reference=False).reference is None


def test_a_reference_whose_card_hides_a_changed_mean_margin_is_refused(tmp_path):
    folder = _copy(tmp_path)
    card = _card(folder)
    card["reference"]["mean_margin"] += 0.01
    _write_card(folder, card)
    with pytest.raises(ModelError, match="mean margin"):
        ModelArtifact(folder)


def test_a_missing_or_unnamed_reference_is_refused(tmp_path):
    missing = _copy(tmp_path, "missing")
    (missing / REFERENCE_FILE).unlink()
    with pytest.raises(ModelError, match=r"names reference\.json, which is missing"):
        ModelArtifact(missing)
    unnamed = _copy(tmp_path, "unnamed")
    card = _card(unnamed)
    del card["reference"]
    _write_card(unnamed, card)
    with pytest.raises(ModelError, match="is not named by its card"):
        ModelArtifact(unnamed)


def test_a_model_without_a_reference_decides_and_ranks_against_the_average(shipped_model,
                                                                            tmp_path):
    folder = _copy(tmp_path)
    (folder / REFERENCE_FILE).unlink()
    card = _card(folder)
    del card["reference"]
    _write_card(folder, card)
    older = ModelArtifact(folder)
    assert older.reference is None
    assert older.reference_contributions(np.zeros((1, len(older.spec.names)))) is None
    ids = population_ids(20, 13)
    columns = generate(ids)
    x = np.vstack([features_for_application(records_at(columns, i), 20000, 12)
                   for i in range(len(ids))])
    policy = load_policy()
    without = DecisionEngine(older, policy).decide(x, age=35, purpose="travel", term_months=12)
    with_reference = DecisionEngine(shipped_model, policy).decide(x, age=35, purpose="travel",
                                                                  term_months=12)
    np.testing.assert_array_equal(without.scored.margin, with_reference.scored.margin)
    for i in range(len(ids)):
        record = without.record(i)
        assert record["reasons_method"] == REASONS_AVERAGE
        assert record["reference"] is None and record["reference_contributions"] is None
        for reason in record["reasons"]:
            assert reason["reference_contribution"] is None
        assert with_reference.record(i)["reasons_method"] == REASONS_REFERENCE
    # A decision recorded against the average ranks the same way again, on request.
    again = DecisionEngine(shipped_model, policy).decide(x, age=35, purpose="travel",
                                                         term_months=12,
                                                         reasons_method=REASONS_AVERAGE)
    assert [again.record(i) for i in range(len(ids))] == [
        {**without.record(i), "model_sha256": shipped_model.sha256} for i in range(len(ids))]
    with pytest.raises(ValueError, match="reasons_method must be 'average:path_dependent' for"):
        DecisionEngine(older, policy).decide(x, age=35, purpose="travel", term_months=12,
                                             reasons_method=REASONS_REFERENCE)
