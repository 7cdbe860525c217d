"""The reason catalogue: every code a decision can carry, once, with its one meaning."""

from __future__ import annotations

import json

import pytest

from scoring.governance.catalogue import AMENDED_REASON, KINDS, OVERTURNED_REASON, reason_catalogue
from scoring.online.policy import Policy, load_policy
from scoring.online.spec import load_spec

SPEC = load_spec()
POLICY = load_policy()
CATALOGUE = reason_catalogue(SPEC, POLICY)
BY_CODE = {entry["code"]: entry for entry in CATALOGUE}


def test_every_code_is_listed_once_with_the_same_fields():
    assert len(BY_CODE) == len(CATALOGUE)
    for entry in CATALOGUE:
        assert list(entry) == ["code", "kind", "text_zh", "text_en", "group", "feature", "rule",
                               "actionable"]
        assert isinstance(entry["actionable"], bool)
        assert entry["kind"] in KINDS and entry["text_zh"] and entry["text_en"]
    # Plain JSON values, ready to be served.
    assert json.loads(json.dumps(CATALOGUE)) == CATALOGUE


def test_each_feature_gives_its_adverse_code_and_its_favourable_one_if_any():
    for f in SPEC.features:
        adverse = BY_CODE[f.adverse.code]
        assert (adverse["kind"], adverse["feature"], adverse["group"], adverse["rule"]) == (
            "adverse", f.name, f.group, None)
        assert adverse["text_en"] == f.adverse.en
        named = [e for e in CATALOGUE if e["feature"] == f.name]
        if f.favourable is None:
            assert [e["kind"] for e in named] == ["adverse"]
        else:
            assert [e["kind"] for e in named] == ["adverse", "favourable"]
            assert named[1]["code"] == f.favourable.code
            assert named[1]["text_zh"] == f.favourable.zh
    assert BY_CODE["CR02"]["text_en"] == "High credit card utilisation"
    assert BY_CODE["CR02F"]["text_en"] == "Low credit card utilisation"
    assert "CT04F" not in BY_CODE


def test_each_rule_the_line_bounds_and_the_reviews_are_listed():
    rules = [e for e in CATALOGUE if e["kind"] == "rule"]
    assert [e["rule"] for e in rules] == list(POLICY.rules)
    for entry in rules:
        rule = POLICY.rule(entry["rule"])
        assert (entry["code"], entry["group"], entry["text_zh"], entry["feature"]) == (
            rule.code, rule.group, rule.zh, None)
    # A knock-out on what cannot change now is no reason the applicant can act on.
    assert {e["rule"] for e in rules if not e["actionable"]} == {
        "court_listing", "bad_debt", "age", "contribution_history", "income_sources"}
    lines = [e for e in CATALOGUE if e["kind"] == "line"]
    assert [(e["code"], e["rule"], e["actionable"]) for e in lines] == [
        ("L01", "income_multiple", True), ("L02", "debt_service", True),
        ("L03", "product_max", False)]
    assert "50%" in BY_CODE["L02"]["text_en"] and "200,000" in BY_CODE["L03"]["text_en"]
    assert CATALOGUE[-2:] == [
        {"code": reason["code"], "kind": "review", "text_zh": reason["text_zh"],
         "text_en": reason["text_en"], "group": None, "feature": None, "rule": None,
         "actionable": False} for reason in (OVERTURNED_REASON, AMENDED_REASON)]


def test_the_review_desk_gives_the_catalogues_review_reasons():
    from service.usecases.reviews import RESOLUTIONS

    assert RESOLUTIONS["overturned"][1] is OVERTURNED_REASON
    assert RESOLUTIONS["amended"][1] is AMENDED_REASON


def test_a_policy_code_that_a_feature_already_means_is_refused():
    doc = dict(POLICY.doc)
    doc["rules"] = {**doc["rules"], "score": {**doc["rules"]["score"], "code": "CR02F"}}
    with pytest.raises(ValueError, match="got CR02F twice"):
        reason_catalogue(SPEC, Policy(doc))
