"""What a model or a policy must pass before it takes a live role."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from scoring.governance.promotion import check_model, check_policy
from scoring.online.canonical import file_sha256
from scoring.online.model import MODELS_DIR, list_versions
from scoring.online.policy import POLICY_DIR
from scoring.online.spec import SPEC_PATH, load_spec, parse_spec

SPEC = load_spec()
MIN_AUC = 0.75
SHIPPED = ("v1", "v1-without-income_tax", "v1-without-provident_fund",
           "v1-without-social_security")
V1_CARD: dict[str, Any] = json.loads((MODELS_DIR / "v1" / "card.json").read_text("utf-8"))


def candidate(tmp_path: Path, change: Callable[[dict], Any] = lambda card: None) -> Path:
    """Copy the shipped v1 to ``tmp_path/candidate`` and change its card in place."""
    directory = tmp_path / "candidate"
    shutil.copytree(MODELS_DIR / "v1", directory)
    card = json.loads((directory / "card.json").read_text("utf-8"))
    change(card)
    (directory / "card.json").write_text(json.dumps(card), encoding="utf-8")
    return directory


def check(tmp_path: Path, spec=SPEC) -> list[str]:
    return check_model("candidate", spec=spec, search=(tmp_path,), min_auc=MIN_AUC)


# -- models --------------------------------------------------------------------------------


def test_the_shipped_versions_are_the_main_model_and_its_three_fallbacks():
    assert set(SHIPPED) <= set(list_versions())


@pytest.mark.parametrize("version", SHIPPED)
def test_the_shipped_model_and_its_fallbacks_pass_every_check(version):
    assert check_model(version, spec=SPEC, min_auc=MIN_AUC) == []


def test_an_unchanged_copy_passes_so_each_failure_below_is_the_change(tmp_path):
    candidate(tmp_path)
    assert check(tmp_path) == []


def test_an_unknown_version_is_named_with_the_known_ones():
    [problem] = check_model("v9", spec=SPEC, min_auc=MIN_AUC)
    assert "'v9'" in problem and "v1-without-income_tax" in problem


def test_an_unreadable_card_is_named(tmp_path):
    directory = candidate(tmp_path)
    (directory / "card.json").write_text("{", encoding="utf-8")
    [problem] = check(tmp_path)
    assert problem.startswith("model candidate: its card.json cannot be read")


def test_an_auc_below_the_floor_is_refused_with_both_figures(tmp_path):
    candidate(tmp_path, lambda card: card["metrics"].update(auc=0.61))
    assert check(tmp_path) == ["model candidate: held-out AUC 0.6100 is below the floor of "
                               "0.7500"]


def test_a_card_without_an_auc_is_refused(tmp_path):
    candidate(tmp_path, lambda card: card["metrics"].pop("auc"))
    [problem] = check(tmp_path)
    assert "metrics.auc" in problem


def test_a_card_whose_sha256_is_not_the_files_is_refused(tmp_path):
    candidate(tmp_path, lambda card: card.update(model_sha256="0" * 64))
    [problem] = check(tmp_path)
    assert "SHA-256" in problem
    assert V1_CARD["model_sha256"] in problem and "0" * 64 in problem


def test_a_model_file_changed_after_its_card_was_written_is_refused(tmp_path):
    directory = candidate(tmp_path)
    with (directory / "model.json").open("a", encoding="utf-8") as fh:
        fh.write("\n")
    [problem] = check(tmp_path)
    assert "SHA-256" in problem and file_sha256(directory / "model.json") in problem


def test_a_card_of_another_spec_document_naming_no_model_digest_is_refused(tmp_path):
    candidate(tmp_path, lambda card: (card.pop("spec_model_digest"),
                                      card.update(spec_digest="f" * 64)))
    [problem] = check(tmp_path)
    assert "f" * 64 in problem and "not the running spec" in problem
    assert SPEC.digest in problem


def test_a_card_of_the_running_spec_document_needs_no_model_digest(tmp_path):
    candidate(tmp_path, lambda card: (card.pop("spec_model_digest"),
                                      card.update(spec_digest=SPEC.digest)))
    assert check(tmp_path) == []


def test_a_card_naming_another_model_digest_is_refused(tmp_path):
    candidate(tmp_path, lambda card: card.update(spec_model_digest="e" * 64))
    [problem] = check(tmp_path)
    assert "differ from the running spec" in problem and "e" * 64 in problem


def test_a_card_naming_the_running_model_digest_passes_whatever_its_document(tmp_path):
    candidate(tmp_path, lambda card: card.update(spec_digest="f" * 64,
                                                 spec_model_digest=SPEC.model_digest))
    assert check(tmp_path) == []


def _spec_doc() -> dict:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def test_a_running_spec_whose_texts_changed_still_accepts_the_model():
    doc = _spec_doc()
    doc["features"][0]["label"]["en"] += " (renamed)"
    doc["features"][0]["adverse"]["en"] += "!"
    relabelled = parse_spec(doc)
    assert relabelled.digest != SPEC.digest
    assert check_model("v1", spec=relabelled, min_auc=MIN_AUC) == []


def test_a_running_spec_with_another_direction_refuses_the_model():
    doc = _spec_doc()
    feature = next(f for f in doc["features"] if f["name"] == "cr_card_utilization")
    assert feature["monotone"] == 1
    feature["monotone"] = -1
    problems = check_model("v1", spec=parse_spec(doc), min_auc=MIN_AUC)
    assert any("differ from the running spec" in p for p in problems)
    assert sum("cr_card_utilization 1 (spec -1)" in p for p in problems) == 2
    assert any("breaks the monotone direction -1 of cr_card_utilization" in p
               for p in problems)


def _drop_constraints(card: dict) -> None:
    del card["monotone_constraints"]
    del card["params"]["monotone_constraints"]


def test_a_card_without_monotone_constraints_is_refused(tmp_path):
    candidate(tmp_path, _drop_constraints)
    assert check(tmp_path) == [
        "model candidate: its card must record monotone_constraints, one direction per "
        "feature; it has none",
        "model candidate: its card must record params.monotone_constraints, one direction "
        "per feature; it has none"]


def test_a_card_whose_constraints_are_not_the_specs_names_the_feature(tmp_path):
    column = V1_CARD["features"].index("cr_card_utilization")
    candidate(tmp_path, lambda card: card["monotone_constraints"].__setitem__(column, 0))
    [problem] = check(tmp_path)
    assert problem.startswith("model candidate: its card's monotone_constraints must be")
    assert "cr_card_utilization 0 (spec 1)" in problem


def train_u_shaped(tmp_path: Path, feature: str, *, constrained: bool) -> None:
    """Train a tiny booster in which risk is high at both ends of ``feature``; v1's card."""
    names = V1_CARD["features"]
    rng = np.random.default_rng(11)
    x = np.zeros((400, len(names)))
    u = rng.uniform(0.0, 1.0, len(x))
    x[:, names.index(feature)] = u
    y = (np.abs(u - 0.5) > 0.25).astype(int)
    params: dict[str, Any] = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3,
                              "base_score": 0.5, "seed": 0, "nthread": 1}
    if constrained:
        directions = ",".join(map(str, SPEC.monotone_constraints(names)))
        params["monotone_constraints"] = f"({directions})"
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=20)
    directory = tmp_path / "candidate"
    directory.mkdir()
    booster.save_model(str(directory / "model.json"))
    # Only the booster differs from v1: its card, without v1's reference (built for v1's
    # trees), and the SHA-256 of the new file.
    card = {k: v for k, v in V1_CARD.items() if k != "reference"}
    card["model_sha256"] = file_sha256(directory / "model.json")
    (directory / "card.json").write_text(json.dumps(card), encoding="utf-8")


@pytest.mark.parametrize(("feature", "sign"), [("cr_card_utilization", 1),
                                               ("ss_months_continuous", -1)])
def test_a_booster_trained_without_constraints_is_refused_naming_the_feature(
        tmp_path, feature, sign):
    assert SPEC.by_name(feature).monotone == sign
    train_u_shaped(tmp_path, feature, constrained=False)
    [problem] = check(tmp_path)
    assert f"breaks the monotone direction {sign:+d} of {feature}" in problem
    # Both the trees and the margins show it.
    assert "splits on it have leaves that move the risk against it" in problem
    assert "the margin moves against it by up to" in problem


@pytest.mark.parametrize("feature", ["cr_card_utilization", "ss_months_continuous"])
def test_the_same_booster_trained_with_the_constraints_passes(tmp_path, feature):
    train_u_shaped(tmp_path, feature, constrained=True)
    assert check(tmp_path) == []


# -- policies ------------------------------------------------------------------------------


def _policy_doc() -> dict:
    return json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))


def policy_file(tmp_path: Path, change: Callable[[dict], Any]) -> str:
    doc = _policy_doc()
    change(doc)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_the_shipped_policy_passes_by_version_and_by_path():
    assert check_policy("2026.11") == []
    assert check_policy(str(POLICY_DIR / "2026.11.json")) == []


def test_an_unknown_policy_is_named_with_the_known_versions():
    [problem] = check_policy("2030.01")
    assert "'2030.01'" in problem and "2026.11" in problem


def test_a_line_above_the_regulatory_cap_is_refused(tmp_path):
    path = policy_file(tmp_path, lambda d: d["limit"].update(max_line=300_000))
    assert check_policy(path) == [f"policy {path} is refused: limit.max_line must be at most "
                                  f"200,000; got 300000"]


def test_an_apr_above_the_regulatory_cap_is_refused(tmp_path):
    path = policy_file(tmp_path, lambda d: d["grades"][0].update(annual_rate=0.30))
    assert check_policy(path) == [f"policy {path} is refused: grade annual_rate must be at "
                                  f"most 0.24; got 0.3"]


def test_a_policy_missing_a_section_is_named(tmp_path):
    path = policy_file(tmp_path, lambda d: d.pop("limit"))
    assert check_policy(path) == [f"policy {path} does not load: it lacks 'limit'"]


def _scopes(*scopes: str) -> Callable[[dict], None]:
    return lambda d: d.update(required_scopes=list(scopes))


@pytest.mark.parametrize(("change", "expected"), [
    (_scopes("provident_fund", "social_security", "income_tax", "credit_report",
             "court_records", "bank_statements"), "required_scopes must be among"),
    (_scopes("provident_fund", "social_security", "credit_report"),
     "required_scopes must include court_records"),
    (_scopes("provident_fund", "credit_report", "court_records"),
     "required_scopes must include at least 2 income sources"),
    (_scopes("provident_fund", "provident_fund", "social_security", "credit_report",
             "court_records"), "required_scopes must name each scope once"),
    (lambda d: d["eligibility"]["allowed_purposes"].append("securities"),
     "allowed_purposes must not include securities"),
    (lambda d: d.update(pd_cutoff=0.005), "otherwise no grade approves"),
    (lambda d: d["limit"].update(min_line=250_000), "limit.min_line must be above 0"),
    (lambda d: d["limit"].update(round_down_to=0), "limit.round_down_to must be above 0"),
    (lambda d: d.update(terms_months=[]), "terms_months must offer at least one term"),
    (lambda d: d["eligibility"].update(age_min=60), "age_min (60) must be at most age_max"),
    (lambda d: d["rules"]["term"].update(code="K01"), "rule codes must be unique; got K01"),
])
def test_a_policy_unsafe_to_run_live_is_refused_with_its_reason(tmp_path, change, expected):
    [problem] = check_policy(policy_file(tmp_path, change))
    assert problem.startswith("policy 2026.11: ")
    assert expected in problem
