"""The feature spec: complete, consistent, and free of protected attributes."""

from __future__ import annotations

import pytest

from scoring.online.spec import load_spec, parse_spec

SPEC = load_spec()
# A good side that is only the absence of something adverse is no reason for an approval.
NO_FAVOURABLE = {"court_adverse_listing", "court_enforcement_open", "court_enforcement_amount",
                 "court_lawsuits_5y", "cr_overdue_now", "cr_bad_debt", "cr_overdue_count_24m",
                 "cr_worst_overdue_24m"}
# What an applicant can change at request time.
ACTIONABLE = {"cr_card_utilization", "cr_loans_open", "cr_overdue_now", "court_enforcement_open",
              "court_enforcement_amount", "debt_to_income", "requested_to_income", "term_months"}
PROTECTED = ("gender", "sex", "ethnic", "nation", "birthplace", "region", "hukou", "age",
             "religion", "city")


def test_spec_has_between_25_and_40_features_with_texts_in_both_languages():
    assert 25 <= len(SPEC.features) <= 40
    for f in SPEC.features:
        assert f.adverse.zh and f.adverse.en
        assert f.favourable is None or (f.favourable.zh and f.favourable.en)
        assert f.group in SPEC.groups
        assert f.monotone in (-1, 0, 1)


def test_reason_codes_are_unique():
    codes = [t.code for f in SPEC.features for t in (f.adverse, f.favourable) if t is not None]
    assert len(codes) == len(set(codes))


def test_each_code_has_one_meaning_the_favourable_one_the_adverse_code_with_f():
    for f in SPEC.features:
        assert f.reason_code == f.adverse.code
        if f.favourable is not None:
            assert f.favourable.code == f.adverse.code + "F"
            assert f.favourable.zh != f.adverse.zh and f.favourable.en != f.adverse.en
    assert {f.name for f in SPEC.features if f.favourable is None} == NO_FAVOURABLE


def test_actionable_features_are_those_an_applicant_can_change_when_applying():
    assert {f.name for f in SPEC.features if f.actionable} == ACTIONABLE


def _doc(*features: dict) -> dict:
    return {"version": "x", "groups": {"a": {"zh": "甲", "en": "A"}}, "features": list(features)}


def _feature(name: str, adverse: str, favourable: str | None, group: str = "a") -> dict:
    return {"name": name, "group": group, "type": "numeric", "monotone": 1,
            "label": {"zh": "特征", "en": "A feature"},
            "adverse": {"code": adverse, "zh": "坏", "en": "bad"},
            "favourable": None if favourable is None else {"code": favourable, "zh": "好",
                                                           "en": "good"},
            "actionable": False, "description": ""}


def test_a_code_given_twice_is_refused_adverse_or_favourable():
    assert parse_spec(_doc(_feature("f", "F1", None), _feature("g", "G1", "G1F"))).names == \
        ["f", "g"]
    with pytest.raises(ValueError, match="reason codes must be unique; got F1 for f and g"):
        parse_spec(_doc(_feature("f", "F1", "F1F"), _feature("g", "G1", "F1")))
    with pytest.raises(ValueError, match="got F1 for f and f"):
        parse_spec(_doc(_feature("f", "F1", "F1")))


@pytest.mark.parametrize("word", PROTECTED)
def test_no_protected_attribute_is_a_feature(word):
    # The age of a credit file is not the applicant's age.
    names = [n.replace("credit_age", "credit-file-age") for n in SPEC.names]
    assert not [n for n in names if word in n.split("_")]


def test_cross_source_features_are_declared():
    for name in ("income_verified_monthly", "income_dispersion", "employer_agreement",
                 "debt_to_income"):
        assert name in SPEC.names


def test_a_spec_with_an_unknown_group_is_refused():
    with pytest.raises(ValueError, match="group must be one of"):
        parse_spec(_doc(_feature("f", "F1", "F1F", group="b")))


def test_digest_changes_with_the_document():
    import json

    from scoring.online.spec import SPEC_PATH

    doc = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    doc["features"][0]["adverse"]["en"] += "!"
    assert parse_spec(doc).digest != SPEC.digest


def test_every_feature_has_a_label_in_chinese_and_english():
    for f in SPEC.features:
        assert f.label.zh and f.label.en, f.name
    assert len({f.label.en for f in SPEC.features}) == len(SPEC.features)
    assert len({f.label.zh for f in SPEC.features}) == len(SPEC.features)
