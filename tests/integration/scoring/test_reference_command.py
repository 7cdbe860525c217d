"""A model's reference: written by ``flashloan train``, written again by ``flashloan model
reference`` from the same data without retraining, byte for byte."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from scoring.online.engine import DecisionEngine
from scoring.online.model import DEFAULT_MODEL_VERSION, MODELS_DIR, ModelArtifact, fallback_version
from scoring.online.policy import load_policy
from scoring.online.reasons import REASONS_AVERAGE, REASONS_REFERENCE
from scoring.online.reference import REFERENCE_FILE
from service.cli.main import main


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _card(folder) -> dict:
    return json.loads((folder / "card.json").read_text(encoding="utf-8"))


def test_training_writes_the_reference_with_the_card(small_model):
    card = _card(small_model)
    named = card["reference"]
    assert named["file"] == REFERENCE_FILE and named["policy_version"] == load_policy().version
    assert named["rows"] == 200
    assert "of the held-out test split (1,000 rows) that policy" in named["population"]
    assert list(card).index("reference") == list(card).index("base_value_meaning") + 1
    assert card["global_importance"]["rows"] == 1000
    model = ModelArtifact(small_model)
    assert model.reference is not None and model.reference.sha256 == named["sha256"]
    assert model.reference.quantiles["cr_card_utilization"][0] >= 0


def test_the_command_writes_the_same_reference_again_without_retraining(small_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(small_model, folder)
    written = (folder / REFERENCE_FILE).read_bytes()
    card, model_bytes = _card(folder), (folder / "model.json").read_bytes()
    (folder / REFERENCE_FILE).unlink()
    older = {k: v for k, v in card.items() if k not in ("reference", "global_importance")}
    (folder / "card.json").write_text(json.dumps(older, ensure_ascii=False, indent=2) + "\n",
                                      encoding="utf-8")
    # An older model without a reference still decides, ranking against the average.
    model = ModelArtifact(folder)
    decided = DecisionEngine(model, load_policy()).decide(
        np.full((1, len(model.spec.names)), np.nan), age=30, purpose="travel", term_months=12)
    assert decided.record(0)["reasons_method"] == REASONS_AVERAGE

    result = _run("model", "reference", str(folder))
    assert result.exit_code == 0, result.output
    assert "model m: reference of 200 approved applicants" in result.output
    assert (folder / REFERENCE_FILE).read_bytes() == written
    assert (folder / "model.json").read_bytes() == model_bytes
    assert _card(folder) == card
    decided = DecisionEngine(ModelArtifact(folder), load_policy()).decide(
        np.full((1, len(model.spec.names)), np.nan), age=30, purpose="travel", term_months=12)
    assert decided.record(0)["reasons_method"] == REASONS_REFERENCE


def test_the_command_refuses_data_other_than_the_models(small_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(small_model, folder)
    card = _card(folder)
    card["training_data"]["seed"] = 5
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    result = _run("model", "reference", str(folder))
    assert result.exit_code != 0
    assert "the training data must be model m's" in result.output


def test_a_fallbacks_reference_is_decided_by_its_main_model(small_model, small_fallback,
                                                            tmp_path):
    folder = tmp_path / "m-without-income_tax"
    shutil.copytree(small_fallback, folder)
    assert "reference" not in _card(folder) and not (folder / REFERENCE_FILE).exists()
    result = _run("model", "reference", str(folder))
    assert result.exit_code != 0 and "give its main model with --main" in result.output

    result = _run("model", "reference", str(folder), "--main", str(small_model))
    assert result.exit_code == 0, result.output
    card = _card(folder)
    assert card["reference"]["population"].endswith(
        "; their features as this model reads them, without income_tax")
    fallback = ModelArtifact(folder)
    assert fallback.reference is not None
    assert fallback.reference.feature_names == tuple(card["features"])
    assert not any(n.startswith("tax_") for n in fallback.reference.feature_names)


@pytest.mark.slow
@pytest.mark.parametrize("version", [DEFAULT_MODEL_VERSION,
                                     fallback_version(DEFAULT_MODEL_VERSION, "provident_fund")])
def test_the_command_reproduces_a_shipped_reference(tmp_path, version):
    shipped = MODELS_DIR / version
    folder = tmp_path / version
    shutil.copytree(shipped, folder)
    (folder / REFERENCE_FILE).write_text("{}", encoding="utf-8")
    result = _run("model", "reference", str(folder))
    assert result.exit_code == 0, result.output
    assert (folder / REFERENCE_FILE).read_bytes() == (shipped / REFERENCE_FILE).read_bytes()
    assert (folder / "card.json").read_bytes() == (shipped / "card.json").read_bytes()
