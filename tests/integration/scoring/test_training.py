"""Training end to end: a real model trained in tmp_path, its card, its constraints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from scoring.governance.drift import DriftReference
from scoring.online.model import ModelArtifact, ModelError
from scoring.online.spec import load_spec
from service.cli.main import main
from tests.sizes import sized_cases

SPEC = load_spec()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m-test"
    result = CliRunner().invoke(main, ["train", "--rows", "20000", "--seed", "3",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_card_describes_the_model(trained):
    card = json.loads((trained / "card.json").read_text(encoding="utf-8"))
    assert card["version"] == "m-test"
    assert card["features"] == SPEC.names
    assert card["monotone_constraints"] == [f.monotone for f in SPEC.features]
    assert card["spec_digest"] == SPEC.digest
    for key in ("auc", "ks", "gini", "brier", "oracle_auc", "calibration_table"):
        assert key in card["metrics"]
    assert card["metrics"]["gini"] == pytest.approx(2 * card["metrics"]["auc"] - 1, abs=1e-5)
    assert card["training_data"]["seed"] == 3 and card["training_data"]["rows"] == 20000
    assert "flashloan train" in card["command"]
    assert set(card["score_scaling"]) == {"base_points", "base_odds", "pdo"}
    assert card["reference"]["rows"] == 200 and (trained / card["reference"]["file"]).is_file()
    assert {f["name"] for f in card["global_importance"]["features"]} == set(SPEC.names)
    drift = DriftReference.from_card(card)
    assert drift is not None and drift.rows == card["training_data"]["split"]["train"]
    assert list(card["monitoring"]["features"]) == list(drift.features) == card["features"]


# Training is seeded the same way at any size: CI trains the run's 5,000-row model m again
# (conftest.py), the full run this module's 20,000-row model too.
@pytest.mark.parametrize("model", sized_cases(["small_model"], ["small_model", "trained"]))
def test_same_seed_same_metrics(request, tmp_path, fresh_draws, model):
    trained = request.getfixturevalue(model)
    data = json.loads((trained / "card.json").read_text(encoding="utf-8"))["training_data"]
    again = tmp_path / "again"
    result = CliRunner().invoke(main, ["train", "--rows", str(data["rows"]),
                                       "--seed", str(data["seed"]), "--out", str(again)])
    assert result.exit_code == 0, result.output
    first = json.loads((trained / "card.json").read_text(encoding="utf-8"))["metrics"]
    second = json.loads((again / "card.json").read_text(encoding="utf-8"))["metrics"]
    assert first == second


def test_an_altered_model_file_is_refused(trained, tmp_path):
    copy = tmp_path / "altered"
    copy.mkdir()
    (copy / "card.json").write_bytes((trained / "card.json").read_bytes())
    model = json.loads((trained / "model.json").read_text(encoding="utf-8"))
    model["learner"]["learner_model_param"]["base_score"] = "1E-1"
    (copy / "model.json").write_text(json.dumps(model), encoding="utf-8")
    with pytest.raises(ModelError, match="SHA-256"):
        ModelArtifact(copy)


@pytest.mark.parametrize("feature", [f.name for f in SPEC.features if f.monotone != 0])
def test_every_monotone_constraint_holds_when_one_feature_is_swept(trained, feature):
    model = ModelArtifact(trained)
    j = SPEC.names.index(feature)
    rng = np.random.default_rng(j)
    import pandas as pd

    from datasources.stub.world import generate, population_ids
    from scoring.online.features import features_for_frame

    base = features_for_frame(pd.DataFrame(generate(population_ids(40, int(rng.integers(1e6))))))
    grid = np.linspace(0, np.nanmax([np.nanmax(base.iloc[:, j].to_numpy()), 1.0]) * 1.5, 25)
    direction = SPEC.by_name(feature).monotone
    for _, row in base.iterrows():
        x = np.tile(row.to_numpy(), (len(grid), 1))
        x[:, j] = grid
        margin = model.predict_margin(x)
        steps = np.diff(margin) * direction
        assert np.all(steps >= -1e-6), f"{feature} breaks its monotone direction {direction}"


def test_contributions_add_up_to_the_margin(trained):
    import pandas as pd

    from datasources.stub.world import generate, population_ids
    from scoring.online.features import features_for_frame

    x = features_for_frame(pd.DataFrame(generate(population_ids(500, 8)))).to_numpy()
    model = ModelArtifact(trained)
    scored = model.score(x)
    np.testing.assert_allclose(scored.contributions.sum(axis=1) + scored.base_value,
                               scored.margin, atol=1e-4)
    np.testing.assert_allclose(model.predict_margin(x), scored.margin, atol=1e-4)


def test_train_needs_exactly_one_data_source(tmp_path):
    result = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "exactly one of --rows or --data" in result.output


def test_train_from_a_bank_history_file(tmp_path):
    runner = CliRunner()
    data = tmp_path / "history.parquet"
    assert runner.invoke(main, ["synth", "--rows", "6000", "--seed", "4",
                                "--out", str(data)]).exit_code == 0
    result = runner.invoke(main, ["train", "--data", str(data), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "b" / "card.json").read_text(encoding="utf-8"))
    assert card["training_data"]["source"] == "file"
    assert card["training_data"]["rows"] == 6000
