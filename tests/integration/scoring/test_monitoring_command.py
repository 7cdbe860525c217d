"""A model's drift reference: written into its card by ``flashloan train``, written again by
``flashloan model monitoring`` from the same data without retraining, byte for byte."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from scoring.governance.drift import WATCH, DriftReference, psi
from scoring.online.model import DEFAULT_MODEL_VERSION, MODELS_DIR, fallback_version, load_model
from scoring.training.train import model_features
from service.cli.main import main

SHIPPED = [DEFAULT_MODEL_VERSION, *(fallback_version(DEFAULT_MODEL_VERSION, scope) for scope in
                                    ("income_tax", "provident_fund", "social_security"))]


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _card(folder) -> dict:
    return json.loads((folder / "card.json").read_text(encoding="utf-8"))


def _write_card(folder, card: dict) -> None:
    (folder / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n",
                                      encoding="utf-8")


def _without_monitoring(folder) -> None:
    _write_card(folder, {k: v for k, v in _card(folder).items() if k != "monitoring"})


def test_training_writes_the_drift_reference_after_the_reference(small_model):
    card = _card(small_model)
    keys = list(card)
    assert keys.index("monitoring") == keys.index("global_importance") + 1
    section = card["monitoring"]
    assert section["split"] == "train"
    assert section["rows"] == card["training_data"]["split"]["train"] == 3000
    assert list(section["features"]) == card["features"]


def test_the_command_writes_the_same_section_again_without_retraining(small_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(small_model, folder)
    written, model_bytes = (folder / "card.json").read_bytes(), (folder / "model.json").read_bytes()
    _without_monitoring(folder)
    assert DriftReference.from_card(_card(folder)) is None

    result = _run("model", "monitoring", str(folder))
    assert result.exit_code == 0, result.output
    assert ("model m: drift reference of the training split (3,000 rows): score, PD and 37 "
            "features") in result.output
    assert (folder / "card.json").read_bytes() == written
    assert (folder / "model.json").read_bytes() == model_bytes


def test_a_fallback_without_a_reference_bins_its_own_features(small_fallback, tmp_path):
    folder = tmp_path / "m-without-income_tax"
    shutil.copytree(small_fallback, folder)
    card = _card(folder)
    assert "reference" not in card
    keys = list(card)
    assert keys.index("monitoring") == keys.index("base_value_meaning") + 1
    assert list(card["monitoring"]["features"]) == card["features"]
    assert not any(name.startswith("tax_") for name in card["monitoring"]["features"])
    written = (folder / "card.json").read_bytes()
    _without_monitoring(folder)
    result = _run("model", "monitoring", str(folder))
    assert result.exit_code == 0, result.output
    assert (folder / "card.json").read_bytes() == written


def test_the_command_refuses_data_other_than_the_models(small_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(small_model, folder)
    card = _card(folder)
    card["training_data"]["seed"] = 5
    _write_card(folder, card)
    result = _run("model", "monitoring", str(folder))
    assert result.exit_code != 0
    assert "the training data must be model m's" in result.output
    assert _card(folder)["monitoring"] == card["monitoring"]


def test_a_model_trained_on_a_file_needs_the_file(small_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(small_model, folder)
    card = _card(folder)
    card["training_data"] = {**card["training_data"], "source": "file", "file": "bank.parquet"}
    _write_card(folder, card)
    result = _run("model", "monitoring", str(folder))
    assert result.exit_code != 0
    assert "model m was trained on bank.parquet: give it with --data" in result.output


@pytest.mark.parametrize("version", SHIPPED)
def test_every_shipped_card_holds_its_training_distributions(version):
    card = json.loads((MODELS_DIR / version / "card.json").read_text(encoding="utf-8"))
    reference = DriftReference.from_card(card)
    assert reference is not None
    assert list(reference.features) == card["features"]
    assert reference.rows == card["training_data"]["split"]["train"]
    for bins in (reference.score, reference.pd, *reference.features.values()):
        assert sum(bins.shares) + bins.missing == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("version", SHIPPED)
def test_a_fresh_population_of_the_training_world_is_stable_against_each_shipped_card(
        synthetic_history, version):
    model = load_model(version)
    reference = DriftReference.from_card(model.card)
    assert reference is not None
    history = synthetic_history(5000, 11)
    _, x = model_features(history, model.spec, model.feature_names,
                          min(model.without) if model.without else None)
    pds = model.calibration.pd(model.margin(x))
    found = {"score": psi(reference.score.expected(),
                          reference.score.counts_of(model.scaling.score(pds))),
             "pd": psi(reference.pd.expected(), reference.pd.counts_of(pds))}
    for j, (name, bins) in enumerate(reference.features.items()):
        found[name] = psi(bins.expected(), bins.counts_of(x[:, j]))
    moved = {name: value for name, value in found.items() if value is None or value >= WATCH}
    assert not moved, f"model {version}: a population like its training set moved: {moved}"
    assert np.isfinite(list(found.values())).all()


@pytest.mark.slow
@pytest.mark.parametrize("version", SHIPPED)
def test_the_command_reproduces_a_shipped_drift_reference(tmp_path, version):
    shipped = MODELS_DIR / version
    folder = tmp_path / version
    shutil.copytree(shipped, folder)
    _without_monitoring(folder)
    result = _run("model", "monitoring", str(folder))
    assert result.exit_code == 0, result.output
    assert (folder / "card.json").read_bytes() == (shipped / "card.json").read_bytes()
